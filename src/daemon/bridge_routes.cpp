#include "daemon/bridge_routes.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/base64.hpp"
#include "core/shell.hpp"
#include "core/text.hpp"
#include "core/utf8.hpp"
#include "core/wire_bridge.hpp"
#include "daemon/bridge_extra.hpp"
#include "daemon/paths.hpp"
#include "daemon/pty_proxy.hpp"
#include "daemon/workspace_fs.hpp"
#include "sandbox/sse.hpp"
#include "server/http_call.hpp"

namespace sandbox::daemon {
using net::use_awaitable;
using nlohmann::json;
using server::Request;
using server::Responder;

std::string errorBody(std::string_view message, std::string_view code) {
    std::string s = "{\"error\":";
    core::appendJsonString(s, message);
    s += ",\"code\":";
    core::appendJsonString(s, code);
    s += "}";
    return s;
}

awaitable<void> sendError(Responder& res, int status, std::string_view code,
                          std::string_view message) {
    co_await res.send(status, "application/json", errorBody(message, code));
}

namespace {

constexpr std::size_t kMaxFileBody = 32ull * 1024 * 1024;
constexpr auto kKeepAlive = std::chrono::seconds(15);

awaitable<void> sendNotFound(Responder& res) {
    co_await res.send(404, "text/plain; charset=UTF-8", "404 Not Found");
}

// Session-Id: absent/empty -> nullopt; invalid -> throws via the flag.
std::optional<std::string> sessionHeader(const Request& req, bool& invalid) {
    invalid = false;
    int count = 0;
    std::string value;
    for (const auto& [k, v] : req.headers)
        if (k == "session-id") {
            value = count++ ? value + ", " + v : v;
        }
    value = core::trim(value, " \t");
    if (value.empty()) return std::nullopt;
    if (!validSessionId(value)) invalid = true;
    return value;
}

std::string jsonStringField(const std::string& key, const std::string& value) {
    std::string s = "{";
    core::appendJsonString(s, key);
    s += ":";
    core::appendJsonString(s, value);
    s += "}";
    return s;
}

// A number as JavaScript prints it in the usual cases: integers without a fraction, others in
// their shortest round-trip form (1.5 -> "1.5").
std::string jsNumber(double v) {
    char buf[64];
    if (v == 0) return "0";
    if (std::nearbyint(v) == v && std::fabs(v) < 1e21) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

struct Ctx {
    SandboxManager& mgr;
};

// The running sandbox for `id`; when it cannot be started, answers 502 pool_error (as the
// reference's pool middleware does) and returns null.
awaitable<std::shared_ptr<Sandbox>> ensureOrReply(Ctx& ctx, const std::string& id, Responder& res) {
    co_return co_await daemon::ensureOrReply(ctx.mgr, id, res);
}

// ---- exec ------------------------------------------------------------------------------

awaitable<void> exec(Ctx& ctx, const std::string& id, Request& req, Responder& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded())
        co_return co_await sendError(res, 400, "invalid_request", "Invalid JSON body");
    // Valid JSON that is not an object (an array, a string, null) has no argv (§2.6).
    auto argvIt = body.find("argv");
    std::vector<std::string> argv;
    bool argvOk = argvIt != body.end() && argvIt->is_array() && !argvIt->empty();
    if (argvOk)
        for (const auto& a : *argvIt) {
            if (!a.is_string()) {
                argvOk = false;
                break;
            }
            argv.push_back(a.get<std::string>());
        }
    if (!argvOk)
        co_return co_await sendError(res, 400, "invalid_request", "argv must be a non-empty array");
    bool badSession = false;
    auto sid = sessionHeader(req, badSession);
    if (badSession)
        co_return co_await sendError(res, 400, "invalid_request", "Invalid session ID format");
    std::optional<double> timeoutMs;
    if (auto t = body.find("timeout_ms"); t != body.end() && t->is_number())
        timeoutMs = t->get<double>();
    std::optional<std::string> cwd;
    if (auto c = body.find("cwd"); c != body.end() && c->is_string()) {
        cwd = resolveWorkspacePath(c->get<std::string>());
        if (cwd->empty())
            co_return co_await sendError(res, 403, "invalid_request",
                                         "cwd must resolve to a location within /workspace");
    }

    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(ctx, id, res);
    if (!sb) co_return;
    const unsigned generation = sb->generation;

    std::string command = core::bridgeCommand(argv);
    json agentReq = {{"command", command}, {"sessionId", sid.value_or("__DISABLE_SESSION__")}};
    if (cwd) agentReq["cwd"] = *cwd;

    co_await res.beginSse();
    res.enableKeepAlive(kKeepAlive);
    auto emit = [&](std::string_view event, std::string_view data) {
        std::string frame;
        formatSseEvent(frame, data, event);
        res.queueRaw(frame);
    };

    std::string agentSocket = sb->connectPath();
    auto up = std::make_shared<server::HttpCall>(
        co_await net::this_coro::executor,
        server::HttpPeer::unixSocket(agentSocket, "the sandbox agent"));
    res.onClientGone([up] { up->cancel(); });  // the agent kills the command when we hang up
    bool timedOut = false;
    net::steady_timer timer(co_await net::this_coro::executor);
    if (timeoutMs) {
        // Fractions count; absurdly large values are capped (no overflow into a negative delay).
        std::chrono::duration<double, std::milli> delay(std::clamp(*timeoutMs, 0.0, 1e15));
        timer.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(delay));
        timer.async_wait([up, &timedOut](boost::system::error_code ec) {
            if (ec) return;
            timedOut = true;
            up->cancel();
        });
    }
    std::string agentBody = agentReq.dump();
    server::Headers jsonHeaders{{"content-type", "application/json"}};
    // A client already gone (its hang-up noticed while the stream began) starts nothing.
    bool started = false;
    if (!res.clientGone())
        started = co_await up->start("POST", "/api/execute/stream", agentBody, jsonHeaders);
    bool terminal = false;
    if (!started) {
        // Our own cancellation (the client hung up, or timeout_ms passed) is no failure of the
        // agent: only a real one marks the sandbox broken (which restarts it, losing its /tmp
        // and processes).
        if (!timedOut && !res.clientGone()) ctx.mgr.markBroken(id, generation);
    } else if (up->status() != 200) {
        std::string errText;
        co_await up->readAll(errText);
        json ej = json::parse(errText, nullptr, false);
        std::string msg = ej.is_object() && ej.contains("message") && ej["message"].is_string()
                              ? ej["message"].get<std::string>()
                              : "HTTP " + std::to_string(up->status());
        emit("error", errorBody(msg, "exec_error"));
        terminal = true;
    } else {
        SseParser parser;
        std::string piece;
        for (;;) {
            int r = co_await up->read(piece);
            if (r <= 0) break;
            parser.feed(piece, [&](SseEvent&& ev) {
                if (terminal) return;
                json e = json::parse(ev.data, nullptr, false);
                if (!e.is_object()) return;
                std::string type = e.value("type", "");
                if (type == "stdout" || type == "stderr") {
                    const auto& d = e["data"];
                    if (d.is_string() && !d.get_ref<const std::string&>().empty())
                        emit(type, core::base64Encode(d.get_ref<const std::string&>()));
                } else if (type == "complete") {
                    if (e.contains("exitCode") && e["exitCode"].is_number_integer())
                        emit("exit",
                             "{\"exit_code\":" + std::to_string(e["exitCode"].get<int>()) + "}");
                    else
                        emit("error",
                             errorBody("the command ended without an exit status", "exec_error"));
                    terminal = true;
                } else if (type == "error") {
                    emit("error", errorBody(e.value("error", "exec failed"), "exec_error"));
                    terminal = true;
                }
            });
            if (!co_await res.flush() || terminal) break;
        }
        if (!terminal && !timedOut && !res.clientGone()) ctx.mgr.markBroken(id, generation);
    }
    timer.cancel();
    if (!terminal && timedOut) {
        emit("stderr",
             core::base64Encode("Command timed out after " + jsNumber(*timeoutMs) + "ms\n"));
        emit("exit", "{\"exit_code\":124}");
        terminal = true;
    }
    if (!terminal)
        emit("error", errorBody("exec failed: " + (up->error().empty() ? std::string("stream ended")
                                                                       : up->error()),
                                "exec_transport_error"));
    // Done with the agent: close now, not when the connection object goes (the keep-alive
    // timer may hold it, and with it this callback and the agent socket, for seconds).
    up->cancel();
    res.onClientGone(nullptr);
    co_await res.endSse();
}

// ---- files -----------------------------------------------------------------------------

// The file path after /file/ (already decoded), resolved; "" + status set on failure.
std::string filePath(const std::string& rel, int& status, std::string& message) {
    if (rel.empty()) {
        status = 400;
        message = "file path must not be empty";
        return {};
    }
    std::string p = resolveWorkspacePath("/" + rel);
    if (p.empty()) {
        status = 403;
        message = "path must resolve to a location within /workspace";
    }
    return p;
}

awaitable<void> readFile(Ctx& ctx, const std::string& id, const std::string& rel, Request& req,
                         Responder& res) {
    int status = 0;
    std::string message;
    std::string path = filePath(rel, status, message);
    if (status) co_return co_await sendError(res, status, "invalid_request", message);
    bool badSession = false;
    auto sid = sessionHeader(req, badSession);
    if (badSession)
        co_return co_await sendError(res, 400, "invalid_request", "Invalid session ID format");
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(ctx, id, res);
    if (!sb) co_return;
    if (sid) co_await touchSession(ctx.mgr, sb, *sid);  // the operation's session exists after it
    // Resolved inside the sandbox's state root, where workspace/ sits as /workspace does in the
    // sandbox: a link to /workspace/x works, and nothing resolves outside the root.
    std::string inside = path.substr(1);  // "workspace/..."
    int fd = openInWorkspace(sb->root, inside);
    struct stat st {};
    if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        ::close(fd);
        fd = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
    }
    if (fd == -ENOENT || fd == -EISDIR || fd == -ENOTDIR)
        co_return co_await sendError(res, 404, "workspace_read_not_found",
                                     "File not found: " + path);
    if (fd < 0)
        co_return co_await sendError(res, 502, "exec_transport_error",
                                     std::string("read failed: ") + std::strerror(-fd));
    co_await res.beginStream(200, "application/octet-stream");
    std::string buf(256 * 1024, '\0');
    for (;;) {
        ssize_t n = ::read(fd, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        res.queueRaw(std::string_view(buf.data(), static_cast<size_t>(n)));
        if (!co_await res.flush()) break;
    }
    ::close(fd);
    co_await res.endSse();
}

awaitable<void> writeFile(Ctx& ctx, const std::string& id, const std::string& rel, Request& req,
                          Responder& res) {
    int status = 0;
    std::string message;
    std::string path = filePath(rel, status, message);
    if (status) co_return co_await sendError(res, status, "invalid_request", message);
    bool badSession = false;
    auto sid = sessionHeader(req, badSession);
    if (badSession)
        co_return co_await sendError(res, 400, "invalid_request", "Invalid session ID format");
    if (req.body.size() > kMaxFileBody)
        co_return co_await sendError(res, 413, "payload_too_large",
                                     "payload too large: " + std::to_string(req.body.size()) +
                                         " bytes exceeds the 33554432-byte limit");
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(ctx, id, res);
    if (!sb) co_return;
    if (sid) co_await touchSession(ctx.mgr, sb, *sid);
    std::string inside = path.substr(1);  // "workspace/...", resolved as for reads
    int fd =
        inside == "workspace" ? -EISDIR : createInWorkspace(sb->root, inside, ctx.mgr.ownerOf(*sb));
    struct stat st {};
    if (fd >= 0 && (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))) {  // e.g. a FIFO
        ::close(fd);
        fd = -EINVAL;
    }
    if (fd < 0)
        co_return co_await sendError(res, 502, "workspace_archive_write_error",
                                     std::string("write failed: ") + std::strerror(-fd));
    size_t off = 0;
    int err = 0;
    while (off < req.body.size()) {
        ssize_t n = ::write(fd, req.body.data() + off, req.body.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            err = errno;
            break;
        }
        off += static_cast<size_t>(n);
    }
    if (::close(fd) != 0 && !err) err = errno;
    if (err)
        co_return co_await sendError(res, 502, "workspace_archive_write_error",
                                     std::string("write failed: ") + std::strerror(err));
    co_await res.send(200, "application/json", "{\"ok\":true}");
}

// ---- running, agent passthrough ----------------------------------------------------------

awaitable<void> running(Ctx& ctx, const std::string& id, Responder& res) {
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(ctx, id, res);
    if (!sb) co_return;
    const unsigned generation = sb->generation;
    std::string agentSocket = sb->connectPath();
    server::HttpCall up(co_await net::this_coro::executor,
                        server::HttpPeer::unixSocket(agentSocket, "the sandbox agent"));
    server::Headers none;
    bool ok = co_await up.start("GET", "/api/ping", std::string(), none);
    std::string body;
    if (ok) ok = co_await up.readAll(body);
    if (!ok) ctx.mgr.markBroken(id, generation);  // the next request starts it again
    co_await res.send(200, "application/json",
                      ok && up.status() == 200 ? "{\"running\":true}" : "{\"running\":false}");
}

awaitable<void> passthrough(Ctx& ctx, const std::string& id, const std::string& rest, Request& req,
                            Responder& res) {
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(ctx, id, res);
    if (!sb) co_return;
    const unsigned generation = sb->generation;
    std::string agentSocket = sb->connectPath();
    auto up = std::make_shared<server::HttpCall>(
        co_await net::this_coro::executor,
        server::HttpPeer::unixSocket(agentSocket, "the sandbox agent"));
    server::Headers headers;
    for (const auto& [k, v] : req.headers)
        if (k == "content-type" || k == "x-session-id" || k == "x-sandbox-id" ||
            k == "x-trace-id" || k == "accept")
            headers.emplace_back(k, v);
    std::string target = "/" + rest + (req.query.empty() ? "" : "?" + req.query);
    if (!co_await up->start(req.method, target, req.body, headers)) {
        ctx.mgr.markBroken(id, generation);
        co_return co_await sendError(res, 502, "exec_transport_error",
                                     "agent failed: " + up->error());
    }
    std::string contentType = "application/octet-stream";
    for (const auto& [k, v] : up->headers())
        if (k == "content-type") contentType = v;
    bool sse = contentType.find("text/event-stream") != std::string::npos;
    server::Headers extra;
    if (sse) extra.emplace_back("Cache-Control", "no-cache");
    co_await res.beginStream(up->status(), contentType, extra);
    if (sse) res.enableKeepAlive(kKeepAlive);
    res.onClientGone([up] { up->cancel(); });
    std::string piece;
    for (;;) {
        int r = co_await up->read(piece);
        if (r < 0) {
            if (!res.clientGone()) ctx.mgr.markBroken(id, generation);
            break;
        }
        if (r == 0) break;
        res.queueRaw(piece);
        if (!co_await res.flush()) break;
    }
    up->cancel();  // as in exec(): release the agent connection now
    res.onClientGone(nullptr);
    co_await res.endSse();
}

}  // namespace

bool validSessionId(std::string_view s) {
    if (s.empty() || s.size() > 128 || s.find("..") != std::string_view::npos) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
            return false;
    return true;
}

bool authorized(const SandboxManager& mgr, const Request& req, bool caseInsensitivePrefix) {
    const std::string& key = mgr.config().apiKey;
    if (key.empty()) return true;
    int count = 0;
    std::string value;
    for (const auto& [k, v] : req.headers)
        if (k == "authorization") {
            value = v;
            ++count;
        }
    if (count != 1) return false;
    value = core::trim(value, " \t");
    if (value.size() < 7) return false;
    std::string prefix = value.substr(0, 7);
    if (caseInsensitivePrefix)
        for (auto& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (prefix != (caseInsensitivePrefix ? "bearer " : "Bearer ")) return false;
    return constantTimeEquals(std::string_view(value).substr(7), key);
}

namespace {
// The case-sensitive "Bearer " prefix (pool and OpenAPI routes, §3); the OpenAPI routes also
// take ?token=.
bool authorizedStrict(const SandboxManager& mgr, const Request& req, bool queryToken) {
    if (authorized(mgr, req, false)) return true;
    const std::string& key = mgr.config().apiKey;
    if (queryToken)
        if (auto t = core::wire::firstQueryParam(req.query, "token");
            t && constantTimeEquals(*t, key))
            return true;
    return false;
}
}  // namespace

std::optional<HeadRefusal> refuseFromHead(const SandboxManager& mgr, const Request& req) {
    const std::string& path = req.path;
    const HeadRefusal unauthorized{401, "unauthorized", "Unauthorized"};
    if (path.rfind("/v1/pool/", 0) == 0)
        return authorizedStrict(mgr, req, false) ? std::nullopt : std::optional(unauthorized);
    if (isOpenApiPath(path)) {
        // Other methods are 404 before authentication, as in the reference.
        if (req.method != "GET" && req.method != "HEAD") return std::nullopt;
        return authorizedStrict(mgr, req, true) ? std::nullopt : std::optional(unauthorized);
    }
    if (path == "/v1/sandbox" || path.rfind("/v1/sandbox/", 0) == 0) {
        // Raw-segment id check first, then auth (§1.2).
        std::string rest = path.size() > 12 ? path.substr(12) : "";
        std::string idRaw = rest.substr(0, rest.find('/'));
        if (!idRaw.empty() && !isValidSandboxId(idRaw))
            return HeadRefusal{400, "invalid_request", "Invalid sandbox ID format"};
        if (!authorized(mgr, req, true)) return unauthorized;
    }
    return std::nullopt;
}

std::function<std::optional<server::CannedResponse>(const Request&)> bridgeHeadCheck(
    const SandboxManager& mgr) {
    return [&mgr](const Request& head) -> std::optional<server::CannedResponse> {
        auto refusal = refuseFromHead(mgr, head);
        if (!refusal) return std::nullopt;
        server::CannedResponse r;
        r.status = refusal->status;
        r.body = errorBody(refusal->message, refusal->code);
        return r;
    };
}

std::string bridgeRefusalBody(const server::Refusal& refusal) {
    const int st = refusal.status;
    std::string_view code = st == 413   ? "payload_too_large"
                            : st == 503 ? "capacity_exceeded"
                            : st == 401 ? "unauthorized"
                            : st < 500  ? "invalid_request"
                                        : "internal_error";
    return errorBody(refusal.message, code);
}

awaitable<std::shared_ptr<Sandbox>> ensureOrReply(SandboxManager& mgr, const std::string& id,
                                                  Responder& res) {
    std::shared_ptr<Sandbox> sb;
    std::string startError;
    bool capacity = false;
    try {
        sb = co_await mgr.ensure(id);
    } catch (const CapacityError& e) {
        capacity = true;  // 503 capacity_exceeded with the raw message (§1.2)
        startError = e.what();
    } catch (const std::exception& e) {
        startError = e.what();
    }
    if (!sb && capacity) {
        co_await sendError(res, 503, "capacity_exceeded", startError);
    } else if (!sb) {
        const std::string message = "pool error: " + startError;
        co_await sendError(res, 502, "pool_error", message);
    }
    co_return sb;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
    unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
    std::size_t n = std::max(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned char>(x ^ y);
    }
    return diff == 0;
}

server::Handler makeBridgeRouter(SandboxManager& manager) {
    auto ctx = std::make_shared<Ctx>(Ctx{manager});
    return [ctx](Request& req, Responder& res) -> awaitable<void> {
        const std::string& raw = req.path;
        if (raw == "/health") {
            if (req.method == "GET" || req.method == "HEAD") {
                // {"ok":true} as the bridge, plus what isolates this host's sandboxes.
                const IsolationReport& iso = ctx->mgr.isolation();
                nlohmann::ordered_json body = {{"ok", true},
                                               {"isolation",
                                                {{"mode", iso.mode},
                                                 {"identity", iso.identity},
                                                 {"seccomp", iso.seccomp},
                                                 {"cgroups", iso.cgroups},
                                                 {"workspace", iso.workspace}}}};
                co_return co_await res.send(200, "application/json", body.dump());
            }
            co_return co_await sendNotFound(res);
        }
        // The id check and authentication: sandboxd's server made them already from the head
        // (bridgeHeadCheck), before reading the body; made again here, as one rule.
        if (auto refusal = refuseFromHead(ctx->mgr, req))
            co_return co_await sendError(res, refusal->status, refusal->code, refusal->message);
        bool extraTop = co_await serveTopLevelExtra(ctx->mgr, req, res);  // pool, openapi
        if (extraTop) co_return;
        if (raw == "/v1/sandbox" || raw.rfind("/v1/sandbox/", 0) == 0) {
            std::string rest = raw.size() > 12 ? raw.substr(12) : "";
            std::string idRaw = rest.substr(0, rest.find('/'));
            if (raw == "/v1/sandbox" && req.method == "POST")
                co_return co_await res.send(200, "application/json",
                                            jsonStringField("id", newSandboxId()));
            if (idRaw.empty()) co_return co_await sendNotFound(res);
            std::string sub =
                rest.size() > idRaw.size() ? rest.substr(idRaw.size()) : "";  // "" or "/..."
            if (sub.empty()) {
                if (req.method == "DELETE") {
                    ctx->mgr.destroy(idRaw);
                    co_return co_await res.send(204, "", "");
                }
                co_return co_await sendNotFound(res);
            }
            if (sub.rfind("/agent/", 0) == 0 && server::isWebSocketUpgrade(req)) {
                const std::string target =
                    sub.substr(6) + (req.query.empty() ? "" : "?" + req.query);
                co_return co_await agentWebSocketProxy(ctx->mgr, idRaw, target, req, res);
            }
            if (sub.rfind("/agent/", 0) == 0)
                co_return co_await passthrough(*ctx, idRaw, sub.substr(7), req, res);
            std::string decoded = removeDotSegments(decodeBridgePath(sub));
            if (decoded == "/running" && req.method == "GET")
                co_return co_await running(*ctx, idRaw, res);
            if (decoded == "/exec" && req.method == "POST")
                co_return co_await exec(*ctx, idRaw, req, res);
            if (decoded == "/pty" && req.method == "GET")
                co_return co_await ptyProxy(ctx->mgr, idRaw, req, res);
            if (decoded == "/file" || decoded.rfind("/file/", 0) == 0) {
                std::string rel = decoded.size() > 6 ? decoded.substr(6) : "";
                if (req.method == "GET") co_return co_await readFile(*ctx, idRaw, rel, req, res);
                if (req.method == "PUT") co_return co_await writeFile(*ctx, idRaw, rel, req, res);
            }
            bool extra = co_await serveSandboxExtra(ctx->mgr, idRaw, decoded, req, res);
            if (extra) co_return;
            co_return co_await sendNotFound(res);
        }
        co_await sendNotFound(res);
    };
}

}  // namespace sandbox::daemon
