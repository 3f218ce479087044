// The SDK: Client, Sandbox, ExecutionSession, streams. Two ways to reach a sandbox:
//  - the container API (sandbox-agent or a real container), either directly (agent transport)
//    or through a bridge's agent passthrough /v1/sandbox/ID/agent (sandboxd, embedded default);
//  - a narrow bridge (Cloudflare's /v1): exec and file routes, the other file operations
//    through exec with quoted argv.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include <simdjson.h>
#include "client/sdk_internal.hpp"

#include "core/base64.hpp"
#include "core/json_util.hpp"
#include "core/mime.hpp"
#include "core/shell.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "core/wire.hpp"

namespace sandbox {
namespace wire = core::wire;
using client::HeaderList;
using client::HttpConnection;
using nlohmann::json;

namespace detail {

// ---- transport failures -> SDK exceptions -------------------------------------------------

[[noreturn]] void rethrowTransport(const client::TransportError& e, const std::string& operation,
                                   bool midStream) {
    json ctx = {{"operation", operation}};
    switch (e.kind()) {
        case client::TransportError::Kind::Connect:
            throw ConnectionError("CONNECTION_FAILED", e.what(), 0, ctx, operation);
        case client::TransportError::Kind::Timeout:
            throw TimeoutError("TIMEOUT", e.what(), 0, ctx, operation);
        case client::TransportError::Kind::Lost:
            if (midStream) throw StreamLostError("STREAM_LOST", e.what(), 0, ctx, operation);
            throw SandboxGoneError("SANDBOX_GONE", e.what(), 0, ctx, operation);
    }
    throw TransportError("TRANSPORT_ERROR", e.what(), 0, ctx, operation);
}

EventSource::EventSource(std::unique_ptr<HttpConnection> conn, std::string operation)
    : conn_(std::move(conn)), operation_(std::move(operation)) {}

EventSource::~EventSource() {
    // Closing mid-stream tells the server nobody listens any more (it stops the command).
    if (!eof_ && conn_) conn_->close();
}

std::optional<SseEvent> EventSource::next() {
    for (;;) {
        if (queuePos_ < queue_.size()) return std::move(queue_[queuePos_++]);
        queue_.clear();
        queuePos_ = 0;
        if (eof_) return std::nullopt;
        std::string piece;
        bool more = false;
        try {
            more = conn_->readChunk(piece);
        } catch (const client::TransportError& e) {
            eof_ = true;
            rethrowTransport(e, operation_, true);
        }
        if (!more) {
            eof_ = true;
            if (auto last = parser_.finish()) queue_.push_back(std::move(*last));
            continue;
        }
        parser_.feed(piece, queue_);
    }
}

bool EventSource::nextRaw(std::string& out) {
    if (eof_) return false;
    try {
        if (conn_->readChunk(out)) return true;
    } catch (const client::TransportError& e) {
        eof_ = true;
        rethrowTransport(e, operation_, true);
    }
    eof_ = true;
    return false;
}

}  // namespace detail

using detail::ClientImpl;
using detail::SandboxState;

namespace {

std::string envOr(const std::string& v, const char* name) {
    if (!v.empty()) return v;
    const char* e = std::getenv(name);
    return e ? e : "";
}

// Bridge ids are [a-z2-7]{1,128}: a name is mapped to lower-case base32 of its UTF-8 bytes,
// which is deterministic and injective (names are at most 63 characters -> at most 101).
std::string bridgeIdFor(const std::string& name) {
    return core::base32Lower(name);
}

void validateName(const std::string& id) {
    static const char* reserved[] = {"www",    "api",        "admin",  "root",
                                     "system", "cloudflare", "workers"};
    if (id.empty() || id.size() > 63)
        throw SandboxSecurityError(
            "INVALID_SANDBOX_ID_LENGTH",
            "Sandbox ID must be 1-63 characters long, got " + std::to_string(id.size()), 400);
    if (id.front() == '-' || id.back() == '-')
        throw SandboxSecurityError("INVALID_SANDBOX_ID_HYPHENS",
                                   "Sandbox ID cannot start or end with a hyphen: '" + id + "'",
                                   400);
    std::string lower = id;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    for (const char* r : reserved)
        if (lower == r)
            throw SandboxSecurityError("RESERVED_SANDBOX_ID", "Sandbox ID '" + id + "' is reserved",
                                       400);
}

// A bridge without session routes answers them with a plain 404 (sandboxd used without its
// agent extension): createSession/deleteSession cannot work there.
[[noreturn]] void rethrowSessionRouteError(const SandboxError& e, const char* method) {
    if (e.httpStatus() == 404 && e.code() == "INTERNAL_ERROR")
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            std::string(method) +
                "() needs a bridge with session routes (/v1/sandbox/ID/session) or the agent "
                "transport; this bridge has neither. getSession(id) still works: the "
                "container creates a named session on first use",
            0, json::object(), e.operation());
    throw;
}

}  // namespace

namespace detail {

json envJson(const EnvVars& env) {
    json e = json::object();
    for (const auto& [k, v] : env)
        if (v) e[k] = *v;
    return e;
}

EnvVars withSandboxEnv(SandboxState& st, const EnvVars& perCall) {
    EnvVars merged;
    {
        std::lock_guard lock(st.m);
        merged = st.envVars;
    }
    for (const auto& [k, v] : perCall)
        if (v) merged[k] = v;
    return merged;
}

// Paths are checked here as the container checks them, so that a malformed one is the same
// ValidationFailedError over every transport (the bridge would read "" as the workspace itself).
void checkPath(std::string_view path, const char* operation) {
    if (auto problems = core::pathProblems(path); !problems.empty())
        throw ValidationFailedError(
            "VALIDATION_FAILED", "Invalid path format for '" + std::string(path) + "': " + problems,
            400,
            json{{"validationErrors",
                  json::array(
                      {{{"field", "path"}, {"message", problems}, {"code", "INVALID_PATH"}}})}},
            operation);
}

// ---- the container API (agent transport, or a bridge's agent passthrough) ---------------------

const client::Endpoint& agentEndpoint(SandboxState& st) {
    std::lock_guard lock(st.m);
    if (st.agentEp) return *st.agentEp;
    auto& c = *st.client;
    if (c.kind == TransportKind::Agent) {
        st.agentEp = c.root;
        return *st.agentEp;
    }
    // Bridge (or embedded sandboxd): is the agent passthrough there? A 404 says no (Cloudflare's
    // bridge); any other failure (a wrong key, a sandbox that cannot start) is thrown, not taken
    // for an answer.
    if (c.agentExtension < 0) {
        bool has = false;
        if (c.opts.apiUrl.empty() || c.kind == TransportKind::Embedded ||
            std::getenv("SANDBOX_BRIDGE_NARROW") == nullptr) {
            try {
                auto r = c.call(c.root, "GET", "/v1/sandbox/" + st.bridgeId + "/agent/api/ping", {},
                                {}, "sandbox.connect", true);
                has = r.body.find("\"success\":true") != std::string::npos;
            } catch (const SandboxError& e) {
                if (e.httpStatus() != 404) throw;
            }
        }
        c.agentExtension = has ? 1 : 0;
    }
    if (c.agentExtension == 1)
        st.agentEp = c.root.withBase("/v1/sandbox/" + st.bridgeId + "/agent");
    static const client::Endpoint none;
    return st.agentEp ? *st.agentEp : none;
}

bool hasAgent(SandboxState& st) {
    return !agentEndpoint(st).host.empty() || !agentEndpoint(st).path.empty();
}

json agentCall(SandboxState& st, const std::string& route, const json& body,
               const std::string& op) {
    auto r = st.client->call(agentEndpoint(st), "POST", route, body.dump(), {}, op, false);
    json j = core::parseJson(r.body);  // simdjson: file contents can be tens of MB
    if (j.is_discarded())
        throw SandboxError("INVALID_JSON_RESPONSE", "the sandbox sent a response that is not JSON",
                           r.status, json::object(), op);
    return j;
}

std::string sessionFor(SandboxState& st, const std::optional<std::string>& bound) {
    if (bound) return *bound;
    if (!st.options.enableDefaultSession) return std::string(wire::kNoSession);
    std::string id = st.defaultSessionId();
    bool ready;
    {
        std::lock_guard lock(st.m);
        ready = st.defaultSessionReady;
    }
    if (!ready) {
        // Created explicitly so that it starts in the container's workspace whatever the first
        // command's cwd is (no cwd sent: an agent's workspace need not be /workspace); an
        // existing session is fine.
        wire::SessionCreateRequest req;
        req.id = id;
        for (const auto& [k, v] : withSandboxEnv(st, {}))
            if (v) req.env[k] = *v;  // the sandbox-level variables (setEnvVars)
        try {
            agentCall(st, "/api/session/create", req.toJson(), "session.create");
        } catch (const SessionAlreadyExistsError&) {
            // Created earlier (another handle): the sandbox-level variables still apply.
            EnvVars env = withSandboxEnv(st, {});
            if (!env.empty()) applyEnvInSession(st, id, env);
        }
        std::lock_guard lock(st.m);
        st.defaultSessionReady = true;
    }
    return id;
}

}  // namespace detail

namespace {

using detail::agentCall;
using detail::agentEndpoint;
using detail::checkPath;
using detail::envJson;
using detail::hasAgent;
using detail::sessionFor;

// ---- the narrow bridge: exec through /exec --------------------------------------------------

std::string bridgePathPart(std::string_view path) {
    // Percent-encode what is not an RFC 3986 pchar or '/'.
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : path) {
        if (std::isalnum(c) || std::strchr("-._~!$&'()*+,;=:@/", c))
            out.push_back(static_cast<char>(c));
        else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

std::string workspacePath(std::string_view p) {
    std::string s(p);
    return !s.empty() && s[0] == '/' ? s : "/workspace/" + s;
}

// The target of the bridge's /file route for `path`. That route cannot address a name with '?',
// '#' or '%' (its path decoding keeps their escapes, bridge-api §2.3): such a path is refused
// rather than reaching another file.
std::string bridgeFileTarget(const SandboxState& st, std::string_view path, const char* operation) {
    if (path.find_first_of("?#%") != std::string_view::npos)
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            "the bridge's file route cannot address a path containing '?', '#' or '%': '" +
                std::string(path) + "'",
            0, json{{"path", std::string(path)}}, operation);
    return "/v1/sandbox/" + st.bridgeId + "/file" + bridgePathPart(workspacePath(path));
}

std::unique_ptr<detail::EventSource> bridgeExecStream(
    SandboxState& st, const std::string& command, const ExecOptions& o,
    const std::optional<std::string>& session,
    std::optional<std::chrono::milliseconds> idle = std::nullopt) {
    std::vector<std::string> argv;
    // Sandbox-level variables (setEnvVars) under the per-command ones.
    EnvVars env = detail::withSandboxEnv(st, o.env);
    if (!env.empty()) {
        argv.push_back("env");
        for (const auto& [k, v] : env)
            if (v) argv.push_back(k + "=" + *v);
    }
    argv.insert(argv.end(), {"bash", "-c", command});
    json body = {{"argv", argv}};
    if (o.timeout) body["timeout_ms"] = o.timeout->count();
    if (o.cwd) body["cwd"] = *o.cwd;
    HeaderList h;
    if (session) h.emplace_back("Session-Id", *session);
    return st.client->stream(st.client->root, "POST", "/v1/sandbox/" + st.bridgeId + "/exec",
                             body.dump(), h, "command.execute", idle);
}

// Reads a bridge exec stream to the end.
ExecResult bridgeExec(SandboxState& st, const std::string& command, const ExecOptions& o,
                      const std::optional<std::string>& session) {
    ExecResult r;
    r.command = command;
    r.sessionId = session;
    // Unless the caller streams, this is a plain request for the caller: the request timeout
    // bounds it as a whole (the bridge's keep-alive comments do not extend it).
    const bool streaming = o.stream && o.onOutput;
    const auto limit = st.client->opts.requestTimeout;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    auto src =
        bridgeExecStream(st, command, o, session, streaming ? std::nullopt : std::optional(limit));
    bool terminal = false;
    while (auto ev = src->next()) {
        if (!streaming && limit.count() > 0 && std::chrono::steady_clock::now() > deadline)
            throw TimeoutError("TIMEOUT", "no exec result within the request timeout", 0,
                               json{{"command", command}}, "command.execute");
        if (ev->event == "stdout" || ev->event == "stderr") {
            std::string bytes;
            if (!core::base64Decode(ev->data, bytes)) continue;
            (ev->event == "stdout" ? r.stdout : r.stderr) += bytes;
            if (o.onOutput) o.onOutput(ev->event, bytes);
        } else if (ev->event == "exit") {
            r.exitCode = json::parse(ev->data, nullptr, false).value("exit_code", -1);
            terminal = true;
            break;
        } else if (ev->event == "error") {
            json e = json::parse(ev->data, nullptr, false);
            std::string msg = e.is_object() ? e.value("error", ev->data) : ev->data;
            throw CommandError(e.is_object() ? e.value("code", "exec_error") : "exec_error", msg,
                               500, json{{"command", command}}, "command.execute");
        }
    }
    if (!terminal)
        throw StreamLostError("STREAM_LOST", "the exec stream ended without an exit event", 0,
                              json{{"command", command}}, "command.execute");
    r.success = r.exitCode == 0;
    return r;
}

ExecResult bridgeRun(SandboxState& st, const std::vector<std::string>& argv) {
    return bridgeExec(st, core::bridgeCommand(argv), {}, std::nullopt);
}

[[noreturn]] void throwBridgeFileError(const std::string& path, const ExecResult& r,
                                       const std::string& op) {
    std::string err = r.stderr;
    json ctx = {{"path", path}, {"stderr", err}, {"exitCode", r.exitCode}};
    if (err.find("No such file") != std::string::npos)
        throw FileNotFoundError("FILE_NOT_FOUND", "File not found: " + path, 404, ctx, op);
    if (err.find("Permission denied") != std::string::npos)
        throw PermissionDeniedError("PERMISSION_DENIED", err, 403, ctx, op);
    if (err.find("File exists") != std::string::npos)
        throw FileExistsError("FILE_EXISTS", "File exists: " + path, 409, ctx, op);
    if (err.find("Is a directory") != std::string::npos)
        throw FileSystemError("IS_DIRECTORY", "Is a directory: " + path, 400, ctx, op);
    if (err.find("Not a directory") != std::string::npos)
        throw FileSystemError("NOT_DIRECTORY", "Path is not a directory: " + path, 400, ctx, op);
    throw FileSystemError("FILESYSTEM_ERROR", op + " failed: " + err, 500, ctx, op);
}

// The hot path of execStream: one event per output line, parsed with simdjson (the JSON is
// single-line and small; nlohmann would cap a stream at ~100 MB/s).
std::optional<ExecEvent> parseExecEvent(std::string& data) {
    thread_local simdjson::dom::parser parser;
    data.reserve(data.size() + simdjson::SIMDJSON_PADDING);
    simdjson::dom::object obj;
    if (parser.parse(data.data(), data.size(), false).get(obj) != simdjson::SUCCESS)
        return std::nullopt;
    auto str = [&](const char* key) -> std::string {
        std::string_view v;
        return obj[key].get(v) == simdjson::SUCCESS ? std::string(v) : std::string();
    };
    ExecEvent ev;
    std::string_view type;
    if (obj["type"].get(type) != simdjson::SUCCESS) return std::nullopt;
    ev.timestamp = str("timestamp");
    if (type == "stdout" || type == "stderr") {
        ev.type = type == "stdout" ? ExecEvent::Type::Stdout : ExecEvent::Type::Stderr;
        ev.data = str("data");
    } else if (type == "start") {
        ev.type = ExecEvent::Type::Start;
        ev.command = str("command");
    } else if (type == "complete") {
        ev.type = ExecEvent::Type::Complete;
        int64_t code;
        if (obj["exitCode"].get(code) == simdjson::SUCCESS) ev.exitCode = static_cast<int>(code);
    } else {
        ev.type = ExecEvent::Type::Error;
        ev.data = str("error");
        if (ev.data.empty()) ev.data = str("data");
    }
    return ev;
}

}  // namespace

// ---- Client ---------------------------------------------------------------------------------

Client::Client(ClientOptions options) : impl_(std::make_shared<ClientImpl>()) {
    auto& c = *impl_;
    c.opts = std::move(options);
    c.opts.apiUrl = envOr(c.opts.apiUrl, "SANDBOX_API_URL");
    c.opts.agentUrl =
        c.opts.apiUrl.empty() ? envOr(c.opts.agentUrl, "SANDBOX_AGENT_URL") : c.opts.agentUrl;
    c.opts.apiKey = envOr(c.opts.apiKey, "SANDBOX_API_KEY");
    if (const char* iso = std::getenv("SANDBOX_ISOLATION"); iso && *iso) {
        if (std::string_view(iso) == "none")
            c.opts.unisolated = true;
        else if (std::string_view(iso) != "bwrap")
            throw ValidationFailedError(
                "VALIDATION_FAILED",
                "SANDBOX_ISOLATION must be bwrap or none, not '" + std::string(iso) + "'", 400);
    }
    c.settings.connectTimeout = c.opts.connectTimeout;
    c.settings.ioTimeout = c.opts.requestTimeout;
    c.settings.caFile = c.opts.caFile;
    try {
        if (!c.opts.apiUrl.empty()) {
            c.kind = TransportKind::Bridge;
            c.root = client::Endpoint::parse(c.opts.apiUrl);
        } else if (!c.opts.agentUrl.empty()) {
            c.kind = TransportKind::Agent;
            c.root = client::Endpoint::parse(c.opts.agentUrl);
        } else {
            c.kind = TransportKind::Embedded;
            c.daemon = detail::EmbeddedDaemon::shared(c.opts.sandboxdPath, c.opts.unisolated);
            c.root = client::Endpoint::parse("unix:" + c.daemon->socketPath());
            c.agentExtension = 1;
        }
    } catch (const std::invalid_argument& e) {
        throw ValidationFailedError("VALIDATION_FAILED",
                                    std::string("invalid sandbox URL: ") + e.what(), 400);
    }
    if (!c.opts.apiKey.empty() && c.kind != TransportKind::Embedded)
        c.auth.emplace_back("Authorization", "Bearer " + c.opts.apiKey);
}

Client Client::fromEnv() {
    return Client(ClientOptions{});
}

TransportKind Client::transport() const {
    return impl_->kind;
}

std::string Client::describe() const {
    switch (impl_->kind) {
        case TransportKind::Bridge:
            return "bridge " + impl_->opts.apiUrl;
        case TransportKind::Agent:
            return "agent " + impl_->opts.agentUrl;
        case TransportKind::Embedded:
            return "embedded sandboxd (pid " + std::to_string(impl_->daemon->pid()) +
                   ", unix:" + impl_->daemon->socketPath() +
                   "; isolation: " + impl_->daemon->isolation() + ")";
    }
    return {};
}

Sandbox getSandbox(const Client& client, std::string id, SandboxOptions options) {
    if (options.normalizeId)
        std::transform(id.begin(), id.end(), id.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    validateName(id);
    Sandbox sb;
    sb.state_ = std::make_shared<SandboxState>();
    sb.state_->client = client.impl_;
    sb.state_->name = id;
    sb.state_->bridgeId = bridgeIdFor(id);
    sb.state_->options = options;
    return sb;
}

// ---- Sandbox --------------------------------------------------------------------------------

const std::string& Sandbox::id() const {
    return state_->name;
}

ExecResult Sandbox::exec(std::string_view command, const ExecOptions& o) const {
    auto start = std::chrono::steady_clock::now();
    std::string ts = core::isoTimestampNow();
    try {
        ExecResult r;
        if (!hasAgent(*state_)) {
            r = bridgeExec(*state_, std::string(command), o, session_);
        } else if (o.stream && o.onOutput) {
            r.command = std::string(command);
            bool terminal = false;
            for (auto& ev : execStream(command, o)) {
                if (ev.type == ExecEvent::Type::Stdout || ev.type == ExecEvent::Type::Stderr) {
                    bool out = ev.type == ExecEvent::Type::Stdout;
                    (out ? r.stdout : r.stderr) += ev.data;
                    o.onOutput(out ? "stdout" : "stderr", ev.data);
                } else if (ev.type == ExecEvent::Type::Complete) {
                    r.exitCode = ev.exitCode.value_or(0);
                    terminal = true;
                } else if (ev.type == ExecEvent::Type::Error) {
                    throw CommandError("COMMAND_EXECUTION_ERROR", ev.data, 500,
                                       json{{"command", std::string(command)}}, "command.execute");
                }
            }
            if (!terminal)
                throw StreamLostError("STREAM_LOST", "Stream ended without completion event", 0);
            std::string sid = sessionFor(*state_, session_);
            if (sid != wire::kNoSession) r.sessionId = sid;
        } else {
            wire::ExecuteRequest req;
            req.command = std::string(command);
            req.sessionId = sessionFor(*state_, session_);
            if (o.timeout) req.timeoutMs = o.timeout->count();
            req.env =
                *req.sessionId == wire::kNoSession ? detail::withSandboxEnv(*state_, o.env) : o.env;
            req.cwd = o.cwd;
            auto resp = wire::ExecuteResponse::fromJson(
                agentCall(*state_, "/api/execute", req.toJson(), "command.execute"));
            r.exitCode = resp.exitCode;
            r.stdout = std::move(resp.stdoutText);
            r.stderr = std::move(resp.stderrText);
            r.command = std::string(command);
            if (*req.sessionId != wire::kNoSession) r.sessionId = req.sessionId;
        }
        r.success = r.exitCode == 0;
        r.timestamp = ts;
        r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        if (o.onComplete) o.onComplete(r);
        return r;
    } catch (const std::exception& e) {
        if (o.onError) o.onError(e);
        throw;
    }
}

ExecStream Sandbox::execStream(std::string_view command, const ExecOptions& o) const {
    if (!hasAgent(*state_)) {
        auto src = bridgeExecStream(*state_, std::string(command), o, session_);
        // The bridge's stream has no start event: its 200 answer is the command's acceptance.
        src->push(SseEvent{
            {},
            json{{"type", "start"}, {"command", command}, {"timestamp", core::isoTimestampNow()}}
                .dump(),
            {},
            {}});
        return ExecStream(std::move(src), std::string(command));
    }
    wire::ExecuteRequest req;
    req.command = std::string(command);
    req.sessionId = sessionFor(*state_, session_);
    if (o.timeout) req.timeoutMs = o.timeout->count();
    req.env = *req.sessionId == wire::kNoSession ? detail::withSandboxEnv(*state_, o.env) : o.env;
    req.cwd = o.cwd;
    auto src = state_->client->stream(agentEndpoint(*state_), "POST", "/api/execute/stream",
                                      req.toJson().dump(), {}, "command.stream");
    return ExecStream(std::move(src), std::string(command));
}

WriteFileResult Sandbox::writeFile(std::string_view path, std::string_view content,
                                   const WriteFileOptions& o) const {
    checkPath(path, "file.write");
    WriteFileResult r;
    r.path = std::string(path);
    if (!hasAgent(*state_)) {
        std::string bytes;
        if (o.encoding == Encoding::Base64 && !core::base64Decode(content, bytes))
            throw ValidationFailedError("VALIDATION_FAILED", "content is not valid base64", 400);
        std::string_view body = o.encoding == Encoding::Base64 ? std::string_view(bytes) : content;
        HeaderList h = {{"Content-Type", "application/octet-stream"}};
        if (session_) h.emplace_back("Session-Id", *session_);
        state_->client->call(state_->client->root, "PUT",
                             bridgeFileTarget(*state_, path, "file.write"), body, h, "file.write",
                             true);
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    wire::WriteRequest req;
    req.path = std::string(path);
    req.content = std::string(content);
    if (o.encoding == Encoding::Base64) req.encoding = "base64";
    req.sessionId = sessionFor(*state_, session_);
    json j = agentCall(*state_, "/api/write", req.toJson(), "file.write");
    r.timestamp = j.value("timestamp", "");
    return r;
}

std::string ReadFileResult::bytes() const {
    if (encoding != "base64") return content;
    std::string out;
    core::base64Decode(content, out);
    return out;
}

ReadFileResult Sandbox::readFile(std::string_view path, const ReadFileOptions& o) const {
    checkPath(path, "file.read");
    if (!hasAgent(*state_)) {
        HeaderList h;
        if (session_) h.emplace_back("Session-Id", *session_);
        auto resp = state_->client->call(state_->client->root, "GET",
                                         bridgeFileTarget(*state_, path, "file.read"), {}, h,
                                         "file.read", true);
        ReadFileResult r;
        r.path = std::string(path);
        r.mimeType = core::mimeTypeForPath(r.path);
        r.size = resp.body.size();
        bool text = core::isTextMimeType(r.mimeType) ||
                    (r.mimeType == "application/octet-stream" && core::isValidUtf8(resp.body) &&
                     resp.body.find('\0') == std::string::npos);
        if (r.mimeType == "application/octet-stream" && text) r.mimeType = "text/plain";
        bool b64 = o.encoding == Encoding::Base64 || (o.encoding == Encoding::Auto && !text);
        r.encoding = b64 ? "base64" : "utf-8";
        r.isBinary = b64;
        r.content = b64 ? core::base64Encode(resp.body) : core::sanitizeUtf8(resp.body);
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    wire::ReadRequest req;
    req.path = std::string(path);
    req.encoding = o.encoding == Encoding::Base64 ? wire::ReadEncoding::Base64
                   : o.encoding == Encoding::Utf8 ? wire::ReadEncoding::Utf8
                                                  : wire::ReadEncoding::Auto;
    req.sessionId = sessionFor(*state_, session_);
    auto w =
        wire::ReadResponse::fromJson(agentCall(*state_, "/api/read", req.toJson(), "file.read"));
    ReadFileResult r;
    r.path = w.path;
    r.content = std::move(w.content);
    r.encoding = w.encoding;
    r.isBinary = w.isBinary;
    r.mimeType = w.mimeType;
    r.size = w.size;
    r.timestamp = w.timestamp;
    return r;
}

FileStream Sandbox::readFileStream(std::string_view path) const {
    checkPath(path, "file.stream");
    if (!hasAgent(*state_)) {
        HeaderList h;
        if (session_) h.emplace_back("Session-Id", *session_);
        auto src = state_->client->stream(state_->client->root, "GET",
                                          bridgeFileTarget(*state_, path, "file.stream"), {}, h,
                                          "file.stream");
        // The download is the file's bytes: the metadata comes from its name and size.
        src->raw = true;
        std::string mime = core::mimeTypeForPath(path);
        bool binary = !core::isTextMimeType(mime);
        std::uint64_t size = 0;
        bool known = false;
        for (const auto& [k, v] : src->headers)
            if (k == "content-length") known = std::sscanf(v.c_str(), "%" SCNu64, &size) == 1;
        if (!known) {
            auto e = bridgeRun(*state_, {"stat", "-L", "-c", "%s", "--", workspacePath(path)});
            if (e.exitCode == 0) size = std::strtoull(e.stdout.c_str(), nullptr, 10);
        }
        FileStream fs(std::move(src));
        fs.meta_ = FileMetadata{mime, size, binary, binary ? "base64" : "utf-8"};
        return fs;
    }
    wire::ReadRequest req;
    req.path = std::string(path);
    req.sessionId = sessionFor(*state_, session_);
    return FileStream(state_->client->stream(agentEndpoint(*state_), "POST", "/api/read/stream",
                                             req.toJson().dump(), {}, "file.stream"));
}

FileOpResult Sandbox::mkdir(std::string_view path, const MkdirOptions& o) const {
    checkPath(path, "file.mkdir");
    FileOpResult r;
    r.path = std::string(path);
    if (!hasAgent(*state_)) {
        std::vector<std::string> argv = {"mkdir"};
        if (o.recursive) argv.push_back("-p");
        argv.insert(argv.end(), {"--", workspacePath(path)});
        auto e = bridgeRun(*state_, argv);
        if (e.exitCode != 0) throwBridgeFileError(r.path, e, "file.mkdir");
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    wire::MkdirRequest req{std::string(path), o.recursive, sessionFor(*state_, session_)};
    r.timestamp =
        agentCall(*state_, "/api/mkdir", req.toJson(), "file.mkdir").value("timestamp", "");
    return r;
}

FileOpResult Sandbox::deleteFile(std::string_view path) const {
    checkPath(path, "file.delete");
    FileOpResult r;
    r.path = std::string(path);
    if (!hasAgent(*state_)) {
        std::string p = workspacePath(path);
        auto e = bridgeRun(*state_, {"bash", "-c",
                                     "if [ -d \"$1\" ] && [ ! -L \"$1\" ]; then echo 'Is a "
                                     "directory' >&2; exit 1; fi; rm -- \"$1\"",
                                     "rm", p});
        if (e.exitCode != 0) throwBridgeFileError(r.path, e, "file.delete");
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    wire::PathRequest req{std::string(path), sessionFor(*state_, session_)};
    r.timestamp =
        agentCall(*state_, "/api/delete", req.toJson(), "file.delete").value("timestamp", "");
    return r;
}

namespace {
FileOpResult moveImpl(const Sandbox& sb, SandboxState& st,
                      const std::optional<std::string>& session, std::string_view from,
                      std::string_view to, bool rename) {
    (void)sb;
    FileOpResult r;
    r.path = std::string(from);
    r.newPath = std::string(to);
    const char* op = rename ? "file.rename" : "file.move";
    checkPath(from, op);
    checkPath(to, op);
    if (!hasAgent(st)) {
        auto e = bridgeRun(st, {"mv", "--", workspacePath(from), workspacePath(to)});
        if (e.exitCode != 0) throwBridgeFileError(r.path, e, op);
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    wire::MoveRequest req{std::string(from), std::string(to), sessionFor(st, session)};
    r.timestamp = agentCall(st, rename ? "/api/rename" : "/api/move",
                            rename ? req.toRenameJson() : req.toMoveJson(), op)
                      .value("timestamp", "");
    return r;
}
}  // namespace

FileOpResult Sandbox::renameFile(std::string_view oldPath, std::string_view newPath) const {
    return moveImpl(*this, *state_, session_, oldPath, newPath, true);
}

FileOpResult Sandbox::moveFile(std::string_view sourcePath,
                               std::string_view destinationPath) const {
    return moveImpl(*this, *state_, session_, sourcePath, destinationPath, false);
}

ListFilesResult Sandbox::listFiles(std::string_view path, const ListFilesOptions& o) const {
    checkPath(path, "file.list");
    ListFilesResult r;
    r.path = std::string(path);
    auto fill = [&](const json& files) {
        for (const auto& f : files) {
            auto w = wire::FileInfo::fromJson(f);
            FileInfo fi;
            fi.name = w.name;
            fi.absolutePath = w.absolutePath;
            fi.relativePath = w.relativePath;
            fi.type = w.type;
            fi.size = w.size;
            fi.modifiedAt = w.modifiedAt;
            fi.mode = w.mode;
            fi.permissions.readable = w.readable;
            fi.permissions.writable = w.writable;
            fi.permissions.executable = w.executable;
            r.files.push_back(std::move(fi));
        }
        r.count = r.files.size();
    };
    if (!hasAgent(*state_)) {
        // find prints one JSON-safe record per entry: type, size, mtime, mode, relative path.
        std::string p = workspacePath(path);
        std::vector<std::string> argv = {"find", p, "-mindepth", "1"};
        if (!o.recursive) argv.insert(argv.end(), {"-maxdepth", "1"});
        if (!o.includeHidden) argv.insert(argv.end(), {"-not", "-name", ".*"});
        argv.insert(argv.end(), {"-printf", "%y\\t%s\\t%TY-%Tm-%TdT%TH:%TM:%TS\\t%m\\t%P\\0"});
        auto t = bridgeRun(*state_, {"test", "-d", p});
        if (t.exitCode != 0) {
            auto ex = bridgeRun(*state_, {"test", "-e", p});
            if (ex.exitCode != 0)
                throw FileNotFoundError("FILE_NOT_FOUND", "Directory not found: " + r.path, 404,
                                        json{{"path", r.path}}, "file.list");
            throw FileSystemError("NOT_DIRECTORY", "Path is not a directory: " + r.path, 400,
                                  json{{"path", r.path}}, "file.list");
        }
        auto e = bridgeRun(*state_, argv);
        if (e.exitCode != 0) throwBridgeFileError(r.path, e, "file.list");
        size_t pos = 0;
        json files = json::array();
        while (pos < e.stdout.size()) {
            auto end = e.stdout.find('\0', pos);
            if (end == std::string::npos) end = e.stdout.size();
            std::string rec = e.stdout.substr(pos, end - pos);
            pos = end + 1;
            std::vector<std::string> f;
            size_t s = 0;
            for (int i = 0; i < 4; ++i) {
                auto tab = rec.find('\t', s);
                if (tab == std::string::npos) break;
                f.push_back(rec.substr(s, tab - s));
                s = tab + 1;
            }
            if (f.size() != 4) continue;
            std::string rel = rec.substr(s);
            int mode = std::stoi(f[3], nullptr, 8);
            std::string modeStr = "---------";
            const char* rwx = "rwxrwxrwx";
            for (int i = 0; i < 9; ++i)
                if (mode & (1 << (8 - i))) modeStr[i] = rwx[i];
            auto slash = rel.rfind('/');
            files.push_back({{"name", slash == std::string::npos ? rel : rel.substr(slash + 1)},
                             {"absolutePath", p + "/" + rel},
                             {"relativePath", rel},
                             {"type", f[0] == "f"   ? "file"
                                      : f[0] == "d" ? "directory"
                                      : f[0] == "l" ? "symlink"
                                                    : "other"},
                             {"size", std::stoull(f[1])},
                             {"modifiedAt", f[2]},
                             {"mode", modeStr},
                             {"permissions",
                              {{"readable", (mode & 0400) != 0},
                               {"writable", (mode & 0200) != 0},
                               {"executable", (mode & 0100) != 0}}}});
        }
        fill(files);
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    wire::ListFilesRequest req{std::string(path), o.recursive, o.includeHidden,
                               sessionFor(*state_, session_)};
    json j = agentCall(*state_, "/api/list-files", req.toJson(), "file.list");
    fill(j.value("files", json::array()));
    r.timestamp = j.value("timestamp", "");
    return r;
}

ExistsResult Sandbox::exists(std::string_view path) const {
    checkPath(path, "file.exists");
    ExistsResult r;
    r.path = std::string(path);
    if (!hasAgent(*state_)) {
        r.exists = bridgeRun(*state_, {"test", "-e", workspacePath(path)}).exitCode == 0;
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    wire::PathRequest req{std::string(path), sessionFor(*state_, session_)};
    json j = agentCall(*state_, "/api/exists", req.toJson(), "file.exists");
    r.exists = j.value("exists", false);
    r.timestamp = j.value("timestamp", "");
    return r;
}

ExecutionSession Sandbox::createSession(const SessionOptions& o) const {
    std::string id = o.id.value_or("session-" + std::to_string(core::epochMillisNow()));
    if (id == wire::kNoSession)
        throw ValidationFailedError("VALIDATION_FAILED", "'" + id + "' is a reserved session id",
                                    400);
    // Session values over the sandbox-level ones (setEnvVars).
    const EnvVars sessionEnv = detail::withSandboxEnv(*state_, o.env);
    if (!hasAgent(*state_)) {
        json body = {{"id", id}};
        if (!sessionEnv.empty()) body["env"] = envJson(sessionEnv);
        if (o.cwd) body["cwd"] = *o.cwd;
        try {
            state_->client->call(state_->client->root, "POST",
                                 "/v1/sandbox/" + state_->bridgeId + "/session", body.dump(), {},
                                 "session.create", false);
        } catch (const SandboxError& e) {
            rethrowSessionRouteError(e, "createSession");
        }
        return ExecutionSession(*this, id);
    }
    wire::SessionCreateRequest req;
    req.id = id;
    for (const auto& [k, v] : sessionEnv)
        if (v) req.env[k] = *v;
    req.cwd = o.cwd;  // default: the container's workspace
    if (o.commandTimeout) req.commandTimeoutMs = o.commandTimeout->count();
    agentCall(*state_, "/api/session/create", req.toJson(), "session.create");
    return ExecutionSession(*this, id);
}

ExecutionSession Sandbox::getSession(std::string_view sessionId) const {
    return ExecutionSession(*this, std::string(sessionId));
}

SessionDeleteResult Sandbox::deleteSession(std::string_view sessionId) const {
    SessionDeleteResult r;
    r.sessionId = std::string(sessionId);
    if (r.sessionId == state_->defaultSessionId())
        throw ValidationFailedError("VALIDATION_FAILED", "the default session cannot be deleted",
                                    400);
    if (!hasAgent(*state_)) {
        try {
            state_->client->call(
                state_->client->root, "DELETE",
                "/v1/sandbox/" + state_->bridgeId + "/session/" + bridgePathPart(r.sessionId), {},
                {}, "session.delete", false);
        } catch (const SandboxError& e) {
            rethrowSessionRouteError(e, "deleteSession");
        }
        r.timestamp = core::isoTimestampNow();
        return r;
    }
    json j = agentCall(*state_, "/api/session/delete",
                       wire::SessionDeleteRequest{r.sessionId}.toJson(), "session.delete");
    r.timestamp = j.value("timestamp", "");
    return r;
}

namespace {
// Bucket mounts are the bridge's: an agent URL addresses a sandbox's own control plane.
void requireBridgeForMounts(const detail::ClientImpl& c, const char* method) {
    if (c.kind == TransportKind::Agent)
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            std::string(method) +
                " needs the bridge transport (SANDBOX_API_URL) or the embedded default: a "
                "sandbox cannot mount a bucket into itself",
            0);
}
}  // namespace

void Sandbox::mountBucket(std::string_view bucket, std::string_view mountPath,
                          const MountBucketOptions& o) const {
    auto& c = *state_->client;
    requireBridgeForMounts(c, "mountBucket()");
    json options = {{"endpoint", o.endpoint}};
    if (o.credentials)
        options["credentials"] = {{"accessKeyId", o.credentials->accessKeyId},
                                  {"secretAccessKey", o.credentials->secretAccessKey}};
    if (o.readOnly) options["readOnly"] = true;
    if (o.prefix) options["prefix"] = *o.prefix;
    if (!o.s3fsOptions.empty()) options["s3fsOptions"] = o.s3fsOptions;
    json body = {{"bucket", bucket}, {"mountPath", mountPath}, {"options", options}};
    c.call(c.root, "POST", "/v1/sandbox/" + state_->bridgeId + "/mount", body.dump(), {},
           "bucket.mount", false);
}

void Sandbox::unmountBucket(std::string_view mountPath) const {
    auto& c = *state_->client;
    requireBridgeForMounts(c, "unmountBucket()");
    json body = {{"mountPath", mountPath}};
    c.call(c.root, "POST", "/v1/sandbox/" + state_->bridgeId + "/unmount", body.dump(), {},
           "bucket.unmount", false);
}

void Sandbox::destroy() const {
    auto& c = *state_->client;
    if (c.kind == TransportKind::Agent)
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            "destroy() needs the bridge transport (SANDBOX_API_URL) or the embedded default: "
            "an agent URL addresses one sandbox's control plane, which cannot destroy its own "
            "sandbox",
            0);
    auto conn = c.acquire(c.root);
    client::HttpResponse r;
    try {
        r = conn->request("DELETE", "/v1/sandbox/" + state_->bridgeId, {}, c.headers());
    } catch (const client::TransportError& e) {
        detail::rethrowTransport(e, "sandbox.destroy", false);
    }
    c.release(std::move(conn));
    if (r.status != 204 && r.status != 200 && r.status != 404)
        throwErrorFromResponse(r.status, r.body, "sandbox.destroy");
    std::lock_guard lock(state_->m);
    state_->defaultSessionReady = false;
}

// ---- streams --------------------------------------------------------------------------------

ExecStream::ExecStream(std::unique_ptr<detail::EventSource> src, std::string command)
    : src_(std::move(src)), command_(std::move(command)) {}
ExecStream::ExecStream(ExecStream&&) noexcept = default;
ExecStream& ExecStream::operator=(ExecStream&&) noexcept = default;
ExecStream::~ExecStream() = default;

ExecStream::iterator ExecStream::begin() {
    return iterator(this);
}

std::optional<ExecEvent> ExecStream::next() {
    if (done_ || !src_) return std::nullopt;
    for (;;) {
        auto ev = src_->next();
        if (!ev) {
            done_ = true;
            throw StreamLostError("STREAM_LOST", "Stream ended without completion event", 0,
                                  json{{"command", command_}}, "command.stream");
        }
        if (!ev->event.empty()) {
            // The bridge's framing: event: stdout|stderr|exit|error, base64 output.
            ExecEvent out;
            if (ev->event == "stdout" || ev->event == "stderr") {
                out.type =
                    ev->event == "stdout" ? ExecEvent::Type::Stdout : ExecEvent::Type::Stderr;
                if (!core::base64Decode(ev->data, out.data)) continue;
            } else if (ev->event == "exit") {
                out.type = ExecEvent::Type::Complete;
                out.exitCode = json::parse(ev->data, nullptr, false).value("exit_code", -1);
                done_ = true;
            } else if (ev->event == "error") {
                out.type = ExecEvent::Type::Error;
                json e = json::parse(ev->data, nullptr, false);
                out.data = e.is_object() ? e.value("error", ev->data) : ev->data;
                done_ = true;
            } else {
                continue;
            }
            return out;
        }
        auto parsed = parseExecEvent(ev->data);
        if (!parsed) continue;
        if (parsed->type == ExecEvent::Type::Complete || parsed->type == ExecEvent::Type::Error)
            done_ = true;
        return parsed;
    }
}

FileStream::FileStream(std::unique_ptr<detail::EventSource> src) : src_(std::move(src)) {}
FileStream::FileStream(FileStream&&) noexcept = default;
FileStream& FileStream::operator=(FileStream&&) noexcept = default;
FileStream::~FileStream() = default;

const FileMetadata& FileStream::metadata() {
    while (!meta_) {
        auto ev = src_->next();
        if (!ev) throw StreamLostError("STREAM_LOST", "Stream completed without metadata", 0);
        json j = json::parse(ev->data, nullptr, false);
        std::string type = j.is_object() ? j.value("type", "") : "";
        if (type == "metadata")
            meta_ = FileMetadata{j.value("mimeType", ""), j.value("size", std::uint64_t{0}),
                                 j.value("isBinary", false), j.value("encoding", "")};
        else if (type == "error")
            throwErrorFromResponse(404,
                                   json{{"code", "FILE_NOT_FOUND"},
                                        {"message", j.value("error", "")},
                                        {"context", json::object()}}
                                       .dump(),
                                   "file.stream");
        else if (type == "chunk")
            throw StreamLostError("STREAM_LOST", "Received chunk before metadata", 0);
    }
    return *meta_;
}

std::optional<std::string> FileStream::nextChunk() {
    if (done_) return std::nullopt;
    const FileMetadata& m = metadata();
    if (src_->raw) {  // a bridge download: the body is the file
        std::string piece;
        if (src_->nextRaw(piece)) return piece;
        done_ = true;
        return std::nullopt;
    }
    for (;;) {
        auto ev = src_->next();
        if (!ev) throw StreamLostError("STREAM_LOST", "Stream ended unexpectedly", 0);
        json j = json::parse(ev->data, nullptr, false);
        std::string type = j.is_object() ? j.value("type", "") : "";
        if (type == "chunk") {
            std::string data = j.value("data", "");
            if (!m.isBinary) return data;
            std::string bytes;
            if (!core::base64Decode(data, bytes))
                throw SandboxError("INVALID_JSON_RESPONSE", "bad base64 in file chunk", 0);
            return bytes;
        }
        if (type == "complete") {
            done_ = true;
            return std::nullopt;
        }
        if (type == "error") {
            done_ = true;
            throw FileSystemError("FILESYSTEM_ERROR",
                                  "File streaming error: " + j.value("error", ""), 500);
        }
    }
}

std::string FileStream::collect() {
    std::string all;
    while (auto c = nextChunk()) all += *c;
    return all;
}

}  // namespace sandbox
