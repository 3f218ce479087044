// Every SDK method over the container API: sandbox-agent's routes (docs/agent.md), reached
// directly or through a bridge's passthrough.
#include "client/container_connection.hpp"

#include <simdjson.h>

#include "client/error_mapping.hpp"
#include "core/base64.hpp"
#include "core/json_util.hpp"
#include "core/shell.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "core/wire.hpp"

namespace sandbox::detail {

namespace wire = core::wire;
using nlohmann::json;

// ---- ContainerApi ---------------------------------------------------------------------------

json ContainerApi::post(const std::string& route, const json& body, const std::string& op,
                        const client::HeaderList& headers) {
    auto r = req_.call(ep_, "POST", route, jsonBody(body, op), headers, op, false);
    json j = core::parseJson(r.body);  // simdjson: file contents can be tens of MB
    if (j.is_discarded())
        throw SandboxError("INVALID_JSON_RESPONSE", "the sandbox sent a response that is not JSON",
                           r.status, json::object(), op);
    return j;
}

json ContainerApi::get(const std::string& route, const std::string& op, std::string_view verb) {
    auto r = req_.call(ep_, verb, route, {}, {}, op, verb == "GET");
    json j = core::parseJson(r.body);
    if (j.is_discarded())
        throw SandboxError("INVALID_JSON_RESPONSE", "the sandbox sent a response that is not JSON",
                           r.status, json::object(), op);
    return j;
}

client::HttpResponse ContainerApi::call(std::string_view method, const std::string& route,
                                        std::string_view body, const std::string& op,
                                        bool idempotent) {
    return req_.call(ep_, method, route, body, {}, op, idempotent);
}

std::unique_ptr<EventSource> ContainerApi::stream(std::string_view method, const std::string& route,
                                                  std::string_view body, const std::string& op,
                                                  std::optional<std::chrono::milliseconds> idle) {
    return req_.stream(ep_, method, route, body, {}, op, idle);
}

std::string ContainerApi::sessionFor(const BoundSession& bound) {
    if (bound) return *bound;
    if (!info_->options.enableDefaultSession) return std::string(wire::kNoSession);
    std::string id = info_->defaultSessionId();
    if (!defaultReady_) {
        // Created explicitly so that it starts in the container's workspace whatever the first
        // command's cwd is (no cwd sent: an agent's workspace need not be /workspace); an
        // existing session is fine.
        wire::SessionCreateRequest req;
        req.id = id;
        for (const auto& [k, v] : info_->withSandboxEnv({}))
            if (v) req.env[k] = *v;  // the sandbox-level variables (setEnvVars)
        try {
            post("/api/session/create", req.toJson(), "session.create");
        } catch (const SessionAlreadyExistsError&) {
            // Created earlier (another handle): the sandbox-level variables still apply.
            EnvVars env = info_->withSandboxEnv({});
            if (!env.empty()) applyEnv(id, env);
        }
        defaultReady_ = true;
    }
    return id;
}

void ContainerApi::applyEnv(const std::string& id, const EnvVars& env) {
    // One command for all of them: export K='v' ...; unset X ... (names checked by the caller)
    std::string exports, unsets;
    for (const auto& [k, v] : env) {
        if (v)
            exports += " " + k + "=" + core::shellQuote(*v);
        else
            unsets += " " + k;
    }
    std::string script;
    if (!exports.empty()) script += "export" + exports;
    if (!unsets.empty()) script += (script.empty() ? "unset" : "; unset") + unsets;
    if (script.empty()) return;
    wire::ExecuteRequest req;
    req.command = script;
    req.sessionId = id;
    req.origin = "internal";
    auto resp = wire::ExecuteResponse::fromJson(post("/api/execute", req.toJson(), "env.set"));
    if (resp.exitCode != 0)
        throw SandboxError("COMMAND_EXECUTION_ERROR",
                           "Failed to set environment variables: " + resp.stderrText, 500,
                           json{{"command", script}, {"stderr", resp.stderrText}}, "env.set");
}

// ---- streams --------------------------------------------------------------------------------

namespace {

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

class ContainerExecEvents final : public ExecEventReader {
  public:
    explicit ContainerExecEvents(std::unique_ptr<EventSource> src) : src_(std::move(src)) {}
    std::optional<ExecEvent> next() override {
        while (auto ev = src_->next())
            if (auto parsed = parseExecEvent(ev->data)) return parsed;
        return std::nullopt;
    }

  private:
    std::unique_ptr<EventSource> src_;
};

// /api/read/stream: a metadata event, chunk events (base64 for binary files), complete.
class ContainerFileReader final : public FileReader {
  public:
    explicit ContainerFileReader(std::unique_ptr<EventSource> src) : src_(std::move(src)) {}

    const FileMetadata& metadata() override {
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

    std::optional<std::string> nextChunk() override {
        if (done_) return std::nullopt;
        const FileMetadata& m = metadata();
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

  private:
    std::unique_ptr<EventSource> src_;
    std::optional<FileMetadata> meta_;
    bool done_ = false;
};

}  // namespace

std::unique_ptr<ExecEventReader> containerExecEvents(std::unique_ptr<EventSource> src) {
    return std::make_unique<ContainerExecEvents>(std::move(src));
}

// ---- ContainerConnection --------------------------------------------------------------------

ContainerConnection::ContainerConnection(Requester& requester, client::Endpoint bridgeRoot,
                                         ContainerRoute route, std::shared_ptr<SandboxInfo> info)
    : req_(requester),
      root_(std::move(bridgeRoot)),
      route_(route),
      info_(info),
      api_(requester,
           route == ContainerRoute::Direct
               ? root_
               : root_.withBase("/v1/sandbox/" + info->bridgeId + "/agent"),
           info),
      ports_(requester, root_, info->bridgeId, true) {}

BridgePorts& ContainerConnection::ports(const char* method, bool exposures) {
    if (route_ == ContainerRoute::Direct) return Connection::ports(method, exposures);
    return ports_;
}

std::string ContainerConnection::describe() const {
    return route_ == ContainerRoute::Direct ? "the agent transport (a sandbox's container API)"
                                            : "a bridge with the container API passthrough";
}

wire::ExecuteRequest ContainerConnection::executeRequest(std::string_view command,
                                                         const ExecOptions& o,
                                                         const BoundSession& s) {
    wire::ExecuteRequest req;
    req.command = std::string(command);
    req.sessionId = api_.sessionFor(s);
    if (o.timeout) req.timeoutMs = o.timeout->count();
    // A session keeps the sandbox-level variables itself; a session-less command gets them here.
    req.env = *req.sessionId == wire::kNoSession ? info_->withSandboxEnv(o.env) : o.env;
    req.cwd = o.cwd;
    return req;
}

ExecResult ContainerConnection::exec(std::string_view command, const ExecOptions& o,
                                     const BoundSession& s) {
    wire::ExecuteRequest req = executeRequest(command, o, s);
    auto resp =
        wire::ExecuteResponse::fromJson(api_.post("/api/execute", req.toJson(), "command.execute"));
    ExecResult r;
    r.exitCode = resp.exitCode;
    r.stdoutText = std::move(resp.stdoutText);
    r.stderrText = std::move(resp.stderrText);
    r.command = std::string(command);
    if (*req.sessionId != wire::kNoSession) r.sessionId = req.sessionId;
    return r;
}

std::unique_ptr<ExecEventReader> ContainerConnection::execStream(std::string_view command,
                                                                 const ExecOptions& o,
                                                                 const BoundSession& s) {
    wire::ExecuteRequest req = executeRequest(command, o, s);
    return containerExecEvents(api_.stream(
        "POST", "/api/execute/stream", jsonBody(req.toJson(), "command.stream"), "command.stream"));
}

WriteFileResult ContainerConnection::writeFile(std::string_view path, std::string_view content,
                                               const WriteFileOptions& o, const BoundSession& s) {
    wire::WriteRequest req;
    req.path = std::string(path);
    if (o.encoding == Encoding::Base64) {
        req.content = std::string(content);
        req.encoding = "base64";
    } else if (!core::isValidUtf8(content)) {
        // Bytes that are not UTF-8 (an image, a Windows-1252 CSV) cannot be a JSON string:
        // they travel base64-encoded and are written exactly.
        req.content = core::base64Encode(content);
        req.encoding = "base64";
    } else {
        req.content = std::string(content);
    }
    req.sessionId = api_.sessionFor(s);
    json j = api_.post("/api/write", req.toJson(), "file.write");
    WriteFileResult r;
    r.path = std::string(path);
    r.timestamp = j.value("timestamp", "");
    return r;
}

ReadFileResult ContainerConnection::readFile(std::string_view path, const ReadFileOptions& o,
                                             const BoundSession& s) {
    wire::ReadRequest req;
    req.path = std::string(path);
    req.encoding = o.encoding == Encoding::Base64 ? wire::ReadEncoding::Base64
                   : o.encoding == Encoding::Utf8 ? wire::ReadEncoding::Utf8
                                                  : wire::ReadEncoding::Auto;
    req.sessionId = api_.sessionFor(s);
    auto w = wire::ReadResponse::fromJson(api_.post("/api/read", req.toJson(), "file.read"));
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

std::unique_ptr<FileReader> ContainerConnection::readFileStream(std::string_view path,
                                                                const BoundSession& s) {
    wire::ReadRequest req;
    req.path = std::string(path);
    req.sessionId = api_.sessionFor(s);
    return std::make_unique<ContainerFileReader>(api_.stream(
        "POST", "/api/read/stream", jsonBody(req.toJson(), "file.stream"), "file.stream"));
}

std::string ContainerConnection::mkdir(std::string_view path, bool recursive,
                                       const BoundSession& s) {
    wire::MkdirRequest req{std::string(path), recursive, api_.sessionFor(s)};
    return api_.post("/api/mkdir", req.toJson(), "file.mkdir").value("timestamp", "");
}

std::string ContainerConnection::deleteFile(std::string_view path, const BoundSession& s) {
    wire::PathRequest req{std::string(path), api_.sessionFor(s)};
    return api_.post("/api/delete", req.toJson(), "file.delete").value("timestamp", "");
}

std::string ContainerConnection::move(std::string_view from, std::string_view to, bool rename,
                                      const BoundSession& s) {
    wire::MoveRequest req{std::string(from), std::string(to), api_.sessionFor(s)};
    return api_
        .post(rename ? "/api/rename" : "/api/move", rename ? req.toRenameJson() : req.toMoveJson(),
              rename ? "file.rename" : "file.move")
        .value("timestamp", "");
}

ListFilesResult ContainerConnection::listFiles(std::string_view path, const ListFilesOptions& o,
                                               const BoundSession& s) {
    wire::ListFilesRequest req{std::string(path), o.recursive, o.includeHidden, api_.sessionFor(s)};
    json j = api_.post("/api/list-files", req.toJson(), "file.list");
    ListFilesResult r;
    r.path = std::string(path);
    for (const auto& f : j.value("files", json::array())) {
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
    r.timestamp = j.value("timestamp", "");
    return r;
}

ExistsResult ContainerConnection::exists(std::string_view path, const BoundSession& s) {
    wire::PathRequest req{std::string(path), api_.sessionFor(s)};
    json j = api_.post("/api/exists", req.toJson(), "file.exists");
    ExistsResult r;
    r.path = std::string(path);
    r.exists = j.value("exists", false);
    r.timestamp = j.value("timestamp", "");
    return r;
}

void ContainerConnection::createSession(const std::string& id, const SessionOptions& o,
                                        const EnvVars& env) {
    wire::SessionCreateRequest req;
    req.id = id;
    for (const auto& [k, v] : env)
        if (v) req.env[k] = *v;
    req.cwd = o.cwd;  // default: the container's workspace
    if (o.commandTimeout) req.commandTimeoutMs = o.commandTimeout->count();
    api_.post("/api/session/create", req.toJson(), "session.create");
}

std::string ContainerConnection::deleteSession(const std::string& id) {
    return api_
        .post("/api/session/delete", wire::SessionDeleteRequest{id}.toJson(), "session.delete")
        .value("timestamp", "");
}

void ContainerConnection::setSessionEnv(const std::string& id, const EnvVars& env) {
    api_.applyEnv(id, env);
}

void ContainerConnection::sandboxEnvChanged(const EnvVars& changes) {
    if (api_.defaultSessionReady() && info_->options.enableDefaultSession)
        api_.applyEnv(info_->defaultSessionId(), changes);
}

void ContainerConnection::destroy() {
    if (route_ == ContainerRoute::Direct)
        unsupported("destroy()",
                    "the bridge transport (SANDBOX_API_URL) or the embedded default: an agent URL "
                    "addresses one sandbox's control plane, which cannot destroy its own sandbox");
    auto r = req_.send(root_, "DELETE", "/v1/sandbox/" + info_->bridgeId, {}, {}, "sandbox.destroy",
                       false);
    if (r.status != 204 && r.status != 200 && r.status != 404)
        throwErrorFromResponse(r.status, r.body, "sandbox.destroy");
    api_.forgetDefaultSession();
}

void ContainerConnection::mountBucket(std::string_view bucket, std::string_view mountPath,
                                      const MountBucketOptions& o) {
    if (route_ == ContainerRoute::Direct)
        unsupported("mountBucket()",
                    "the bridge transport (SANDBOX_API_URL) or the embedded default: a sandbox "
                    "cannot mount a bucket into itself");
    bridgeMount(req_, root_, info_->bridgeId, bucket, mountPath, o);
}

void ContainerConnection::unmountBucket(std::string_view mountPath) {
    if (route_ == ContainerRoute::Direct)
        unsupported("unmountBucket()",
                    "the bridge transport (SANDBOX_API_URL) or the embedded default: a sandbox "
                    "cannot mount a bucket into itself");
    bridgeUnmount(req_, root_, info_->bridgeId, mountPath);
}

TerminalTarget ContainerConnection::terminal(const std::string& session, const std::string& query) {
    if (route_ == ContainerRoute::Direct)
        return {root_, "/ws/pty?sessionId=" + core::queryEscape(session) + "&" + query,
                req_.headers()};
    return {root_,
            "/v1/sandbox/" + info_->bridgeId + "/pty?" + query +
                "&session=" + core::queryEscape(session),
            req_.headers()};
}

}  // namespace sandbox::detail
