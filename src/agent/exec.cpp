#include "agent/exec.hpp"

#include "core/errors.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

namespace {

void checkCommand(const std::string& command) {
    if (command.find('\0') != std::string::npos)
        throw core::validationError("Invalid command: contains null bytes", "command",
                                    "INVALID_COMMAND", "contains null bytes");
}

CommandSpec specFrom(const wire::ExecuteRequest& r) {
    return CommandSpec{r.command, r.env, r.cwd};
}

// Throws the 410 for a session whose shell is gone.
[[noreturn]] void throwSessionGone(Agent& agent, const std::string& sid,
                                   const ForegroundResult& r) {
    agent.evictIfDead(sid);
    if (r.outcome == ForegroundResult::Outcome::Destroyed)
        throw ApiError("SESSION_DESTROYED",
                       "Session '" + sid + "' was destroyed while the command ran",
                       {{"sessionId", sid}});
    throw ApiError("SESSION_TERMINATED",
                   "Session '" + sid + "' terminated: the shell exited with code " +
                       std::to_string(r.exitCode),
                   {{"sessionId", sid}, {"exitCode", r.exitCode}});
}

bool blank(std::string_view s) {
    return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

ApiError notFound(const std::string& id) {
    return ApiError("PROCESS_NOT_FOUND", "Process not found: " + id, {{"processId", id}});
}

ApiError alreadyExists(const std::string& id) {
    return ApiError("PROCESS_ALREADY_EXISTS",
                    "Process id '" + id + "' is already used by a running process",
                    {{"processId", id}});
}

awaitable<wire::ProcessStartedResponse> startBackground(Agent& agent, const wire::ExecuteRequest& r,
                                                        const ExecTarget& t) {
    std::shared_ptr<RunningCommand> run;
    // Tagged like a started process, so a kill finds every descendant.
    std::string tag = agent.processTable().newTag("");
    CommandSpec spec = specFrom(r);
    spec.env[kProcessTagVar] = tag;
    if (t.sessionless) {
        if (r.cwd && !isDirectory(*r.cwd))
            throw ApiError("STREAM_START_ERROR", "Failed to change directory to '" + *r.cwd + "'",
                           {{"command", r.command}});
        run = agent.spawnSessionless(spec, false);
    } else {
        auto s = agent.session(t.sessionId, r.cwd);
        auto guard = co_await LockGuard::acquire(s->mutex());
        run = co_await s->startBackground(spec);
        if (!run)
            throw ApiError("STREAM_START_ERROR",
                           "Failed to start command in session '" + t.sessionId + "'",
                           {{"command", r.command}});
    }
    auto rec = agent.addProcess(r.command, t.sessionId, run, std::nullopt, tag);
    if (r.timeoutMs && *r.timeoutMs > 0) rec->timeoutMs = r.timeoutMs;
    agent.pump(rec);
    wire::ProcessStartedResponse out{rec->id, rec->pid, rec->command, core::isoTimestampNow()};
    co_return out;
}

}  // namespace

ExecTarget resolveTarget(const std::optional<std::string>& bodyId,
                         const std::optional<std::string>& ctxId) {
    ExecTarget t;
    std::optional<std::string> id = bodyId && !bodyId->empty() ? bodyId : ctxId;
    if (id && core::trim(*id).empty())
        throw core::validationError("sessionId must not be empty or whitespace", "sessionId",
                                    "INVALID_SESSION_ID", "must not be empty or whitespace");
    if (!id) {
        t.sessionId = std::string(wire::kDefaultSession);
        t.implicitDefault = true;
    } else {
        t.sessionId = *id;
    }
    t.sessionless = t.sessionId == wire::kNoSession;
    return t;
}

awaitable<wire::ExecuteResponse> executeCommand(
    Agent& agent, const wire::ExecuteRequest& r,
    const std::optional<std::string>& contextSessionId) {
    checkCommand(r.command);
    checkEnv(r.env);
    auto t = resolveTarget(r.sessionId, contextSessionId);
    wire::ExecuteResponse out;
    out.command = r.command;
    if (!t.implicitDefault) out.sessionId = t.sessionId;

    if (t.sessionless) {
        std::string so, se;
        int code = 1;
        if (r.cwd && !isDirectory(*r.cwd)) {
            se = "Failed to change directory to '" + *r.cwd + "'";
        } else {
            auto run = agent.spawnSessionless(specFrom(r), true);
            if (r.timeoutMs && *r.timeoutMs > 0)
                run->setTimeout(std::chrono::milliseconds(*r.timeoutMs), agent.config().killGrace);
            std::optional<int> exit;
            OutputChunk c_;
            for (;;) {
                bool more = co_await run->next(c_);
                if (!more) break;
                OutputChunk* c = &c_;
                if (c->kind == OutputChunk::Stdout && so.size() < kMaxForegroundOutput)
                    so += c->data;
                else if (c->kind == OutputChunk::Stderr && se.size() < kMaxForegroundOutput)
                    se += c->data;
                else if (c->kind == OutputChunk::Exit)
                    exit = c->exitCode;
            }
            code = exit.value_or(1);
            if (run->timedOut()) {
                code = 124;
                if (!se.empty() && se.back() != '\n') se += "\n";
                se += "Command timed out after " + std::to_string(*r.timeoutMs) + "ms";
            }
        }
        out.exitCode = code;
        out.stdoutText = core::sanitizeUtf8(so);
        out.stderrText = core::sanitizeUtf8(se);
    } else {
        auto s = agent.session(t.sessionId, r.cwd, r.timeoutMs);
        auto guard = co_await LockGuard::acquire(s->mutex());
        std::optional<std::chrono::milliseconds> timeout;
        if (auto ms = r.timeoutMs ? r.timeoutMs : s->commandTimeoutMs(); ms && *ms > 0)
            timeout = std::chrono::milliseconds(*ms);
        auto fr = co_await s->exec(specFrom(r), timeout);
        if (fr.outcome == ForegroundResult::Outcome::TimedOut) {
            guard.release();
            agent.evictIfDead(t.sessionId);
            std::string msg = "Command timeout after " + std::to_string(timeout->count()) + "ms";
            throw ApiError("COMMAND_EXECUTION_ERROR",
                           "Failed to execute command '" + r.command + "' in session '" +
                               t.sessionId + "': " + msg,
                           {{"command", r.command}, {"stderr", msg}});
        }
        if (fr.outcome != ForegroundResult::Outcome::Exited)
            throwSessionGone(agent, t.sessionId, fr);
        out.exitCode = fr.exitCode;
        out.stdoutText = core::normalizeSessionOutput(fr.stdoutRaw);
        out.stderrText = core::normalizeSessionOutput(fr.stderrRaw);
    }
    out.success = out.exitCode == 0;
    out.timestamp = core::isoTimestampNow();
    co_return out;
}

awaitable<wire::ProcessStartedResponse> executeInBackground(
    Agent& agent, const wire::ExecuteRequest& r,
    const std::optional<std::string>& contextSessionId) {
    checkCommand(r.command);
    checkEnv(r.env);
    auto t = resolveTarget(r.sessionId, contextSessionId);
    if (core::trim(r.command).empty())
        throw ApiError("INVALID_COMMAND", "Invalid command: empty command provided",
                       {{"command", r.command}});
    auto out = co_await startBackground(agent, r, t);
    co_return out;
}

awaitable<ExecStream> startExecStream(Agent& agent, const wire::ExecuteRequest& r,
                                      const std::optional<std::string>& contextSessionId) {
    if (core::trim(r.command).empty())
        throw ApiError("INVALID_COMMAND", "Invalid command: empty command provided",
                       {{"command", r.command}});
    checkCommand(r.command);
    checkEnv(r.env);
    auto t = resolveTarget(r.sessionId, contextSessionId);

    std::shared_ptr<RunningCommand> run;
    std::optional<LockGuard> guard;
    if (t.sessionless) {
        if (r.cwd && !isDirectory(*r.cwd))
            throw ApiError("STREAM_START_ERROR", "Failed to change directory to '" + *r.cwd + "'",
                           {{"command", r.command}});
        run = agent.spawnSessionless(specFrom(r), true);
    } else {
        auto s = agent.session(t.sessionId, r.cwd);
        guard.emplace(
            co_await LockGuard::acquire(s->mutex()));  // a foreground stream holds the session
        run = co_await s->startBackground(specFrom(r));
        if (!run) {
            agent.evictIfDead(t.sessionId);
            throw ApiError("STREAM_START_ERROR",
                           "Failed to start command in session '" + t.sessionId + "'",
                           {{"command", r.command}});
        }
    }
    auto rec = agent.addProcess(r.command, t.sessionId, run);
    ExecStream out{std::move(run), std::move(rec), std::move(guard), t.sessionless};
    co_return out;
}

awaitable<wire::ProcessStartedResponse> startProcess(Agent& agent,
                                                     const wire::StartProcessRequest& r) {
    if (blank(r.command))
        throw ApiError("INVALID_COMMAND", "Invalid command: empty command provided",
                       {{"command", r.command}});
    if (r.command.find('\0') != std::string::npos)
        throw core::validationError("Invalid command: contains null bytes", "command",
                                    "INVALID_COMMAND", "contains null bytes");
    checkEnv(r.env);
    auto& table = agent.processTable();
    if (r.processId) {
        if (auto problem = wire::processIdProblem(*r.processId); !problem.empty())
            throw core::validationError("Invalid processId '" + *r.processId + "': " + problem,
                                        "processId", "INVALID_PROCESS_ID", problem);
        if (auto old = table.get(*r.processId); old && !old->ended)
            throw alreadyExists(*r.processId);
    }
    std::string sid =
        r.sessionId && !r.sessionId->empty() ? *r.sessionId : std::string(wire::kDefaultSession);
    if (blank(sid))
        throw core::validationError("sessionId must not be empty or whitespace", "sessionId",
                                    "INVALID_SESSION_ID", "must not be empty or whitespace");
    const std::string id = r.processId.value_or(newProcessId());
    std::string tag = table.newTag(id);
    CommandSpec spec{r.command, r.env, r.cwd};
    spec.env[kProcessTagVar] = tag;

    std::shared_ptr<RunningCommand> run;
    if (sid == wire::kNoSession) {
        std::string cwd = r.cwd.value_or(agent.config().workspace);
        if (!isDirectory(cwd))
            throw ApiError("STREAM_START_ERROR", "Failed to change directory to '" + cwd + "'",
                           {{"command", r.command}, {"stderr", "No such directory: " + cwd}});
        run = agent.spawnSessionless(spec, false);
    } else {
        auto s = agent.session(sid, r.cwd);
        auto guard = co_await LockGuard::acquire(s->mutex());
        run = co_await s->startBackground(spec);
        if (!run) {
            agent.evictIfDead(sid);
            throw ApiError("STREAM_START_ERROR", "Failed to start command in session '" + sid + "'",
                           {{"command", r.command}, {"stderr", "the session shell is gone"}});
        }
    }
    // Another start with the same id may have won while this one waited for the session.
    if (auto old = table.get(id); old && !old->ended) {
        run->kill(std::chrono::milliseconds(0));
        throw alreadyExists(id);
    }
    auto rec = table.add(r.command, sid, run, id, tag);
    rec->timeoutMs = r.timeoutMs;
    table.pump(rec, agent.config().killGrace);
    wire::ProcessStartedResponse out{rec->id, rec->pid, rec->command, core::isoTimestampNow()};
    co_return out;
}

std::shared_ptr<ProcessRecord> findProcess(Agent& agent, const std::string& id) {
    auto rec = agent.processTable().get(id);
    if (!rec) throw notFound(id);
    return rec;
}

awaitable<void> killProcess(Agent& agent, const std::string& id,
                            const std::optional<std::string>& signal) {
    auto rec = findProcess(agent, id);
    // SIGKILL skips the polite SIGTERM.
    bool force = false;
    if (signal) {
        std::string s = *signal;
        if (s.rfind("SIG", 0) == 0) s = s.substr(3);
        if (s == "KILL" || s == "9")
            force = true;
        else if (s != "TERM" && s != "15")
            throw core::validationError("Unsupported signal '" + *signal + "'", "signal",
                                        "INVALID_SIGNAL", "use SIGTERM (default) or SIGKILL");
    }
    if (rec->ended || rec->killing)
        throw ApiError("COMMAND_NOT_FOUND",
                       "Command '" + id + "' not found or already completed in session '" +
                           rec->sessionId + "'",
                       {{"command", id}});
    rec->status = "killed";
    co_await agent.processTable().kill(rec, agent.config().killGrace, force);
}

awaitable<std::size_t> killAllProcesses(Agent& agent) {
    auto& table = agent.processTable();
    std::vector<std::shared_ptr<ProcessRecord>> targets;
    for (const auto& rec : table.list())
        if (rec->status == "running" && !rec->ended && !rec->killing) targets.push_back(rec);
    // All at once: one grace period for all of them, one /proc scan per poll.
    for (const auto& rec : targets) rec->status = "killed";
    co_await table.killMany(targets, agent.config().killGrace, false);
    co_return targets.size();
}

wire::ProcessLogsResponse processLogs(Agent& agent, const std::string& id) {
    auto rec = findProcess(agent, id);
    wire::ProcessLogsResponse out;
    out.processId = rec->id;
    out.stdoutText = rec->log.text(0);
    out.stderrText = rec->log.text(1);
    out.stdoutDroppedBytes = rec->log.droppedBytes(0);
    out.stderrDroppedBytes = rec->log.droppedBytes(1);
    out.timestamp = core::isoTimestampNow();
    return out;
}

}  // namespace sandbox::agent
