#include "agent/routes.hpp"

#include <sys/stat.h>

#include <functional>
#include <unordered_map>

#include "agent/files.hpp"
#include "agent/git.hpp"
#include "agent/watch.hpp"
#include "agent/ws_mux.hpp"
#include "core/base64.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/shell.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;
using server::Request;
using server::Responder;

namespace {

using Route = std::function<awaitable<void>(Agent&, Request&, Responder&)>;

// Resolves which session (or none) a request runs in.
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

void checkPath(const std::string& path) {
    if (auto problems = core::pathProblems(path); !problems.empty())
        throw ApiError(
            "VALIDATION_FAILED", "Invalid path format for '" + path + "': " + problems,
            {{"validationErrors",
              json::array(
                  {{{"field", "path"}, {"message", problems}, {"code", "INVALID_PATH"}}})}});
}

void checkCommand(const std::string& command) {
    if (command.find('\0') != std::string::npos)
        throw core::validationError("Invalid command: contains null bytes", "command",
                                    "INVALID_COMMAND", "contains null bytes");
}

// Absolute path for a file route: relative paths against the session's current directory.
std::string resolveFilePath(Agent& agent, const std::string& path,
                            const std::optional<std::string>& sessionId) {
    if (!path.empty() && path[0] == '/') return core::resolvePath("/", path);
    std::string base = agent.config().workspace;
    std::string sid =
        sessionId && !sessionId->empty() ? *sessionId : std::string(wire::kDefaultSession);
    if (sid != wire::kNoSession) base = agent.session(sid)->currentDir();
    return core::resolvePath(base, path);
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

// ---- sessions ------------------------------------------------------------------------------

awaitable<void> sessionCreate(Agent& agent, Request& req, Responder& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
        body = json::object();  // as the reference: defaults
    auto r = wire::SessionCreateRequest::fromJson(body);
    auto s = agent.createSession(r);
    const char* placement = std::getenv("CLOUDFLARE_PLACEMENT_ID");
    json reply =
        wire::success({{"data", {{"id", s->id()}}},
                       {"containerPlacementId", placement ? json(placement) : json(nullptr)}});
    co_await res.sendJson(200, reply);
}

awaitable<void> sessionList(Agent& agent, Request&, Responder& res) {
    json reply = wire::success({{"data", agent.sessionIds()}});
    co_await res.sendJson(200, reply);
}

awaitable<void> sessionDelete(Agent& agent, Request& req, Responder& res) {
    auto r = wire::SessionDeleteRequest::fromJson(core::parseJsonObject(req.body));
    co_await agent.deleteSession(r.sessionId);
    json reply = wire::success({{"sessionId", r.sessionId}});
    co_await res.sendJson(200, reply);
}

// ---- exec ----------------------------------------------------------------------------------

awaitable<void> startBackground(Agent& agent, const wire::ExecuteRequest& r, const ExecTarget& t,
                                Responder& res, const std::optional<std::string>& processId = {}) {
    std::shared_ptr<RunningCommand> run;
    // Tagged like POST /api/process/start, so a kill finds every descendant.
    std::string tag = agent.processTable().newTag(processId.value_or(""));
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
    auto rec = agent.addProcess(r.command, t.sessionId, run, processId, tag);
    if (r.timeoutMs && *r.timeoutMs > 0) rec->timeoutMs = r.timeoutMs;
    agent.pump(rec);
    wire::ProcessStartedResponse out{rec->id, rec->pid, rec->command, core::isoTimestampNow()};
    co_await res.sendJson(200, out.toJson());
}

awaitable<void> execute(Agent& agent, Request& req, Responder& res) {
    auto r = wire::ExecuteRequest::fromJson(core::parseJsonObject(req.body));
    checkCommand(r.command);
    checkEnv(r.env);
    auto t = resolveTarget(r.sessionId, contextSessionId(req));
    if (r.background) {
        if (core::trim(r.command).empty())
            throw ApiError("INVALID_COMMAND", "Invalid command: empty command provided",
                           {{"command", r.command}});
        co_await startBackground(agent, r, t, res);
        co_return;
    }
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
    co_await res.sendJson(200, out.toJson());
}

// Splits session-mode stream output into lines: one event per line, each ending in "\n".
struct LineSplitter {
    std::string partial;
    template <class F>
    void feed(std::string_view data, F&& emit) {
        size_t start = 0;
        for (;;) {
            auto nl = data.find('\n', start);
            if (nl == std::string_view::npos) break;
            if (partial.empty()) {
                emit(data.substr(start, nl - start + 1));
            } else {
                partial.append(data.substr(start, nl - start + 1));
                emit(std::string_view(partial));
                partial.clear();
            }
            start = nl + 1;
        }
        partial.append(data.substr(start));
    }
    template <class F>
    void finish(F&& emit) {
        if (partial.empty()) return;
        partial.push_back('\n');
        emit(std::string_view(partial));
        partial.clear();
    }
};

awaitable<void> executeStream(Agent& agent, Request& req, Responder& res) {
    auto r = wire::ExecuteRequest::fromJson(core::parseJsonObject(req.body));
    if (core::trim(r.command).empty())
        throw ApiError("INVALID_COMMAND", "Invalid command: empty command provided",
                       {{"command", r.command}});
    checkCommand(r.command);
    checkEnv(r.env);
    auto t = resolveTarget(r.sessionId, contextSessionId(req));

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
    co_await res.beginSse();
    // A client that goes away takes its command with it (nobody would see the output).
    res.onClientGone([run, grace = agent.config().killGrace] { run->kill(grace); });
    res.queueEvent(wire::exec_event::start(r.command, core::isoTimestampNow()));

    LineSplitter lines[2];
    core::Utf8StreamDecoder decoders[2];
    std::string ts = core::isoTimestampNow();
    auto emit = [&](int which, std::string_view data) {
        rec->append(which, std::string(data));
        res.queueEvent(wire::exec_event::output(which == 0 ? "stdout" : "stderr", data, ts));
    };
    OutputChunk c_;
    for (;;) {
        bool more = co_await run->next(c_);
        if (!more) break;
        OutputChunk* c = &c_;
        ts = core::isoTimestampNow();
        if (c->kind == OutputChunk::Exit) {
            for (int i = 0; i < 2; ++i) {
                if (t.sessionless) {
                    if (auto rest = decoders[i].flush(); !rest.empty()) emit(i, rest);
                } else {
                    lines[i].finish([&](std::string_view l) { emit(i, core::sanitizeUtf8(l)); });
                }
            }
            rec->finish(c->exitCode);
            res.queueEvent(wire::exec_event::complete(c->exitCode, ts));
            break;
        }
        int i = c->kind == OutputChunk::Stdout ? 0 : 1;
        if (t.sessionless) {
            std::string text = decoders[i].decode(c->data);
            if (!text.empty()) emit(i, text);
        } else {
            lines[i].feed(c->data, [&](std::string_view l) {
                if (core::isValidUtf8(l))
                    emit(i, l);
                else
                    emit(i, core::sanitizeUtf8(l));
            });
        }
        if (res.queued() >= 32 * 1024)
            co_await res.flush();
        else if (!res.clientGone())
            co_await res.flush();
    }
    co_await res.endSse();
}

// ---- files ---------------------------------------------------------------------------------

awaitable<void> fileRead(Agent& agent, Request& req, Responder& res) {
    auto r = wire::ReadRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    auto abs = resolveFilePath(agent, r.path, r.sessionId);
    auto out = files::read(abs, r.path, r.encoding);
    out.timestamp = core::isoTimestampNow();
    std::string text = out.toJsonString();
    co_await res.send(200, "application/json", std::move(text));
}

awaitable<void> fileReadStream(Agent& agent, Request& req, Responder& res) {
    std::optional<files::ReadStream> stream;
    std::string failure;
    try {
        auto r = wire::ReadRequest::fromJson(core::parseJsonObject(req.body));
        checkPath(r.path);
        stream.emplace(resolveFilePath(agent, r.path, r.sessionId), r.path);
    } catch (const ApiError& e) {
        failure = e.message();
    } catch (const std::exception& e) {
        failure = e.what();
    }
    co_await res.beginSse();
    if (!stream) {
        res.queueEvent(wire::read_event::error(failure));
        co_await res.endSse();
        co_return;
    }
    res.queueEvent(
        wire::read_event::metadata(stream->mimeType(), stream->size(), stream->isBinary()));
    std::string chunk;
    while (stream->next(chunk)) {
        res.queueEvent(wire::read_event::chunk(chunk));
        if (res.queued() >= 256 * 1024 && !co_await res.flush()) co_return;
    }
    res.queueEvent(wire::read_event::complete(stream->bytesRead()));
    co_await res.endSse();
}

awaitable<void> fileWrite(Agent& agent, Request& req, Responder& res) {
    auto r = wire::WriteRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    std::string decoded;
    if (r.isBase64()) {
        if (!core::isBase64Charset(r.content) || !core::base64Decode(r.content, decoded))
            throw ApiError(
                "VALIDATION_FAILED", "Invalid base64 content for '" + r.path + "'",
                {{"validationErrors", json::array({{{"field", "content"},
                                                    {"message", "Invalid base64 characters"},
                                                    {"code", "INVALID_BASE64"}}})}});
    }
    auto abs = resolveFilePath(agent, r.path, r.sessionId);
    files::write(abs, r.path,
                 r.isBase64() ? std::string_view(decoded) : std::string_view(r.content));
    json reply = wire::success({{"path", r.path}});
    co_await res.sendJson(200, reply);
}

awaitable<void> fileDelete(Agent& agent, Request& req, Responder& res) {
    auto r = wire::PathRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    files::remove(resolveFilePath(agent, r.path, r.sessionId), r.path);
    json reply = wire::success({{"path", r.path}});
    co_await res.sendJson(200, reply);
}

awaitable<void> fileMove(Agent& agent, Request& req, Responder& res, bool isRename) {
    json body = core::parseJsonObject(req.body);
    auto r =
        isRename ? wire::MoveRequest::fromRenameJson(body) : wire::MoveRequest::fromMoveJson(body);
    checkPath(r.from);
    checkPath(r.to);
    files::move(resolveFilePath(agent, r.from, r.sessionId),
                resolveFilePath(agent, r.to, r.sessionId), r.from,
                isRename ? "file.rename" : "file.move");
    json reply = wire::success({{"path", r.from}, {"newPath", r.to}});
    co_await res.sendJson(200, reply);
}

awaitable<void> fileMkdir(Agent& agent, Request& req, Responder& res) {
    auto r = wire::MkdirRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    files::mkdir(resolveFilePath(agent, r.path, r.sessionId), r.path, r.recursive);
    json reply = wire::success({{"path", r.path}, {"recursive", r.recursive}});
    co_await res.sendJson(200, reply);
}

awaitable<void> fileList(Agent& agent, Request& req, Responder& res) {
    auto r = wire::ListFilesRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    auto entries = files::list(resolveFilePath(agent, r.path, r.sessionId), r.path, r.recursive,
                               r.includeHidden);
    json arr = json::array();
    for (const auto& e : entries) arr.push_back(e.toJson());
    auto n = arr.size();
    json reply = wire::success({{"path", r.path}, {"files", std::move(arr)}, {"count", n}});
    co_await res.sendJson(200, reply);
}

awaitable<void> fileExists(Agent& agent, Request& req, Responder& res) {
    auto r = wire::PathRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    bool e = files::exists(resolveFilePath(agent, r.path, r.sessionId));
    json reply = wire::success({{"path", r.path}, {"exists", e}});
    co_await res.sendJson(200, reply);
}

// ---- misc ----------------------------------------------------------------------------------

awaitable<void> root(Agent&, Request&, Responder& res) {
    co_await res.send(200, "text/plain; charset=utf-8", "Hello from the sandbox agent! 🚀");
}

awaitable<void> ping(Agent&, Request&, Responder& res) {
    json reply = wire::success({{"status", "healthy"}, {"message", "pong"}});
    co_await res.sendJson(200, reply);
}

awaitable<void> version(Agent& agent, Request&, Responder& res) {
    json reply = wire::success({{"version", agent.config().version}});
    co_await res.sendJson(200, reply);
}

awaitable<void> commands(Agent&, Request&, Responder& res) {
    static const std::vector<std::string> kCommands = {
        "exec",          "execStream",   "readFile", "readFileStream", "writeFile", "deleteFile",
        "renameFile",    "moveFile",     "mkdir",    "listFiles",      "exists",    "createSession",
        "deleteSession", "listSessions", "ping",     "getVersion"};
    json reply = wire::success({{"availableCommands", kCommands}, {"count", kCommands.size()}});
    co_await res.sendJson(200, reply);
}

// A route for every path under a prefix; the handler gets what follows the prefix.
using PrefixRoute = std::function<awaitable<void>(Agent&, Request&, Responder&, std::string)>;

struct RouteTable {
    std::unordered_map<std::string, Route> exact;               // "METHOD path"
    std::vector<std::pair<std::string, PrefixRoute>> prefixes;  // tried when no exact match
};

RouteTable buildRoutes() {
    RouteTable t;
    auto add = [&](const char* method, const char* path, Route r) {
        t.exact[std::string(method) + " " + path] = std::move(r);
    };
    add("GET", "/", root);
    add("GET", "/api/ping", ping);
    add("GET", "/api/version", version);
    add("GET", "/api/commands", commands);
    add("POST", "/api/session/create", sessionCreate);
    add("GET", "/api/session/list", sessionList);
    add("POST", "/api/session/delete", sessionDelete);
    add("POST", "/api/execute", execute);
    add("POST", "/api/execute/stream", executeStream);
    add("POST", "/api/read", fileRead);
    add("POST", "/api/read/stream", fileReadStream);
    add("POST", "/api/write", fileWrite);
    add("POST", "/api/delete", fileDelete);
    add("POST", "/api/rename",
        [](Agent& a, Request& q, Responder& s) { return fileMove(a, q, s, true); });
    add("POST", "/api/move",
        [](Agent& a, Request& q, Responder& s) { return fileMove(a, q, s, false); });
    add("POST", "/api/mkdir", fileMkdir);
    add("POST", "/api/list-files", fileList);
    add("POST", "/api/exists", fileExists);
    add("POST", "/api/git/checkout", gitCheckoutRoute);
    add("POST", "/api/watch", watchRoute);
    add("POST", "/api/watch/check", watchCheckRoute);
    // Processes and ports (processes.hpp). list and kill-all win over /api/process/{id}.
    add("POST", "/api/process/start", process_routes::start);
    add("GET", "/api/process/list", process_routes::list);
    add("DELETE", "/api/process/kill-all", process_routes::killAll);
    t.prefixes.emplace_back("/api/process/", process_routes::byId);
    add("POST", "/api/port-watch", process_routes::portWatch);
    return t;
}

const server::Headers kCors = {
    {"Access-Control-Allow-Origin", "*"},
    {"Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"},
    {"Access-Control-Allow-Headers",
     "Content-Type, Authorization, X-Session-Id, X-Sandbox-Id, X-Trace-Id"}};

}  // namespace

std::optional<std::string> contextSessionId(const Request& req) {
    if (auto auth = req.header("authorization");
        auth && auth->rfind("Bearer ", 0) == 0 && auth->size() > 7)
        return std::string(auth->substr(7));
    if (auto h = req.header("x-session-id"); h && !h->empty()) return std::string(*h);
    if (auto q = req.queryParam("session"); q && !q->empty()) return q;
    if (auto q = req.queryParam("sessionId"); q && !q->empty()) return q;
    return std::nullopt;
}

server::Handler makeRouter(Agent& agent) {
    auto table = std::make_shared<RouteTable>(buildRoutes());
    server::Handler router = [&agent, table](Request& req, Responder& res) -> awaitable<void> {
        auto it = table->exact.find(req.method + " " + req.path);
        Route route = it == table->exact.end() ? Route() : it->second;
        if (!route && req.method != "OPTIONS")
            for (const auto& [prefix, handler] : table->prefixes)
                if (req.path.size() > prefix.size() && req.path.rfind(prefix, 0) == 0) {
                    route = [h = handler, rest = req.path.substr(prefix.size())](
                                Agent& a, Request& q, Responder& s) { return h(a, q, s, rest); };
                    break;
                }
        std::optional<ApiError> error;
        if (!route) {
            if (req.method == "OPTIONS") {
                co_await res.send(204, "text/plain", "", kCors);
                co_return;
            }
            error =
                ApiError("UNKNOWN_ERROR", "The requested endpoint was not found").withStatus(404);
        } else {
            try {
                co_await route(agent, req, res);
            } catch (const ApiError& e) {
                error = e;
            } catch (const std::system_error& e) {
                error = ApiError("INTERNAL_ERROR", e.what());
            }
        }

        if (error && !res.started()) co_await res.sendJson(error->httpStatus(), error->envelope());
    };
    // /ws, /api/ws (route multiplexer) and /ws/pty in front of the table (ws_mux.cpp).
    return withWebSockets(agent, std::move(router));
}

}  // namespace sandbox::agent
