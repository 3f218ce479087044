// The /api/process/* routes (container-api §3.5) over the process table.
#include <sys/stat.h>

#include "agent/agent.hpp"
#include "agent/processes.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/shell.hpp"
#include "core/time.hpp"

namespace sandbox::agent::process_routes {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

namespace {

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

}  // namespace

awaitable<void> start(Agent& agent, Request& req, Responder& res) {
    auto r = wire::StartProcessRequest::fromJson(core::parseJsonObject(req.body));
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
    co_await res.sendJson(200, out.toJson());
}

awaitable<void> list(Agent& agent, Request& req, Responder& res) {
    auto filter = req.queryParam("status");
    json arr = json::array();
    for (const auto& rec : agent.processTable().list())
        if (!filter || rec->status == *filter) arr.push_back(rec->info().toJson(false));
    json reply = wire::success({{"processes", std::move(arr)}});
    co_await res.sendJson(200, reply);
}

awaitable<void> killAll(Agent& agent, Request&, Responder& res) {
    auto& table = agent.processTable();
    std::vector<std::shared_ptr<ProcessRecord>> targets;
    for (const auto& rec : table.list())
        if (rec->status == "running" && !rec->ended && !rec->killing) targets.push_back(rec);
    // All at once: one grace period for all of them, one /proc scan per poll.
    for (const auto& rec : targets) rec->status = "killed";
    co_await table.killMany(targets, agent.config().killGrace, false);
    json reply = wire::success({{"cleanedCount", targets.size()}});
    co_await res.sendJson(200, reply);
}

namespace {

awaitable<void> streamLogs(std::shared_ptr<ProcessRecord> rec, Responder& res) {
    co_await res.beginSse();
    auto gone = std::make_shared<bool>(false);
    res.onClientGone([gone] { *gone = true; });
    res.queueEvent(
        wire::process_event::info(rec->id, rec->command, rec->status, core::isoTimestampNow()));
    LogCursor cur;
    const char* names[2] = {"stdout", "stderr"};
    for (;;) {
        std::string ts = core::isoTimestampNow();
        const auto& log = rec->log;
        if (cur.seq < log.firstSeq()) {
            // The ring dropped output before this reader got it: say how much, per stream.
            for (int i = 0; i < 2; ++i) {
                std::uint64_t missed = log.droppedBytes(i) - cur.accounted[i];
                if (missed > 0)
                    res.queueEvent(wire::process_event::dropped(names[i], missed, rec->id, ts));
                cur.accounted[i] = log.droppedBytes(i);
            }
            cur.seq = log.firstSeq();
        }
        for (const auto& c : log.chunks()) {
            if (c.seq < cur.seq) continue;
            res.queueEvent(wire::process_event::output(names[c.stream], c.data, rec->id, ts));
            cur.seq = c.seq + 1;
        }
        // A chunk dropped later counts against this reader only if it did not get it.
        for (int i = 0; i < 2; ++i) cur.accounted[i] = log.droppedBytes(i);
        const bool ended = rec->ended;
        if (ended)
            res.queueEvent(wire::process_event::exit(rec->id, rec->exitCode, rec->status, ts));
        bool ok = co_await res.flush();
        if (!ok || ended || *gone) break;
        if (rec->log.nextSeq() > cur.seq) continue;  // more arrived while writing
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        co_await rec->waitChange(deadline);
        if (*gone || res.clientGone()) break;
    }
    res.onClientGone(nullptr);
    co_await res.endSse();
}

}  // namespace

awaitable<void> byId(Agent& agent, Request& req, Responder& res, std::string rest) {
    std::string id = rest, sub;
    if (auto slash = rest.find('/'); slash != std::string::npos) {
        id = rest.substr(0, slash);
        sub = rest.substr(slash + 1);
    }
    const bool isGet = req.method == "GET", isDelete = req.method == "DELETE";
    const bool trailingSlash = rest.find('/') != std::string::npos && sub.empty();
    const bool known =
        !id.empty() && !trailingSlash &&
        ((sub.empty() && (isGet || isDelete)) || ((sub == "logs" || sub == "stream") && isGet));
    if (!known)
        throw ApiError("UNKNOWN_ERROR", "The requested endpoint was not found").withStatus(404);
    auto rec = agent.processTable().get(id);
    if (!rec) throw notFound(id);

    if (sub == "logs") {
        wire::ProcessLogsResponse out;
        out.processId = rec->id;
        out.stdoutText = rec->log.text(0);
        out.stderrText = rec->log.text(1);
        out.stdoutDroppedBytes = rec->log.droppedBytes(0);
        out.stderrDroppedBytes = rec->log.droppedBytes(1);
        out.timestamp = core::isoTimestampNow();
        co_await res.sendJson(200, out.toJson());
        co_return;
    }
    if (sub == "stream") {
        co_await streamLogs(rec, res);
        co_return;
    }
    if (isGet) {
        json reply = wire::success({{"process", rec->info().toJson(true)}});
        co_await res.sendJson(200, reply);
        co_return;
    }
    // DELETE: kill the whole tree. ?signal=SIGKILL skips the polite SIGTERM.
    bool force = false;
    if (auto sig = req.queryParam("signal")) {
        std::string s = *sig;
        if (s.rfind("SIG", 0) == 0) s = s.substr(3);
        if (s == "KILL" || s == "9")
            force = true;
        else if (s != "TERM" && s != "15")
            throw core::validationError("Unsupported signal '" + *sig + "'", "signal",
                                        "INVALID_SIGNAL", "use SIGTERM (default) or SIGKILL");
    }
    if (rec->ended || rec->killing)
        throw ApiError("COMMAND_NOT_FOUND",
                       "Command '" + id + "' not found or already completed in session '" +
                           rec->sessionId + "'",
                       {{"command", id}});
    rec->status = "killed";
    co_await agent.processTable().kill(rec, agent.config().killGrace, force);
    json reply = wire::success({{"processId", id}});
    co_await res.sendJson(200, reply);
}

}  // namespace sandbox::agent::process_routes
