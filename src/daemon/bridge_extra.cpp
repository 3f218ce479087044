#include "daemon/bridge_extra.hpp"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/json_util.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "core/wire_bridge.hpp"
#include "daemon/archive.hpp"
#include "daemon/bridge_routes.hpp"
#include "daemon/mounts.hpp"
#include "daemon/openapi.hpp"
#include "daemon/paths.hpp"
#include "server/http_call.hpp"

namespace sandbox::daemon {
using nlohmann::json;
using server::Request;
using server::Responder;
namespace wire = core::wire;

namespace {

awaitable<void> sendOk(Responder& res) {
    co_await res.send(200, "application/json", "{\"ok\":true}");
}

awaitable<void> sendInternalError(Responder& res) {
    co_await res.send(500, "text/plain; charset=UTF-8", "Internal Server Error");
}

// One JSON call to the sandbox's agent. Returns the HTTP status, or -1 when the agent could
// not be reached (the sandbox is then marked broken, as the other routes do).
awaitable<int> agentCall(SandboxManager& mgr, const std::shared_ptr<Sandbox>& sb,
                         const std::string& path, const std::string& body, std::string& reply) {
    const unsigned generation = sb->generation;
    std::string socket = sb->connectPath();
    server::HttpCall up(co_await net::this_coro::executor,
                        server::HttpPeer::unixSocket(socket, "the sandbox agent"));
    server::Headers headers{{"content-type", "application/json"}};
    bool ok = co_await up.start("POST", path, body, headers);
    if (ok) ok = co_await up.readAll(reply);
    if (!ok) {
        reply = up.error().empty() ? "the sandbox agent did not answer" : up.error();
        mgr.markBroken(sb->id, generation);
        co_return -1;
    }
    co_return up.status();
}

// The message of a container-API error body (or the status when there is none).
std::string agentMessage(int status, const std::string& reply) {
    if (status < 0) return reply;
    json j = json::parse(reply, nullptr, false);
    if (j.is_object()) {
        if (j.contains("message") && j["message"].is_string()) return j["message"];
        if (j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
            j["error"]["message"].is_string())
            return j["error"]["message"];
        if (j.contains("error") && j["error"].is_string()) return j["error"];
    }
    return "HTTP " + std::to_string(status);
}

// ---- sessions (§5.13, §5.14) ---------------------------------------------------------------

awaitable<void> sessionCreate(SandboxManager& mgr, const std::string& id, Request& req,
                              Responder& res) {
    // Nesting bounded (core::parseJson): the body is serialised again (recursively) below.
    json body = core::parseJson(req.body);
    if (body.is_null()) co_return co_await sendInternalError(res);        // as the reference
    if (body.is_discarded() || !body.is_object()) body = json::object();  // "any failure: {}"
    if (!body.contains("id")) body["id"] = "session-" + std::to_string(core::epochMillisNow());
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    std::string reply;
    std::string payload = body.dump();
    int status = co_await agentCall(mgr, sb, "/api/session/create", payload, reply);
    if (status != 200) {
        const std::string message = "session create failed: " + agentMessage(status, reply);
        co_return co_await sendError(res, 502, "session_error", message);
    }
    json r = json::parse(reply, nullptr, false);
    std::string sid = body["id"].is_string() ? body["id"].get<std::string>() : "";
    if (r.is_object() && r.contains("data") && r["data"].is_object() && r["data"].contains("id") &&
        r["data"]["id"].is_string())
        sid = r["data"]["id"];
    std::string out = "{\"id\":";
    core::appendJsonString(out, sid);
    out += "}";
    co_await res.send(200, "application/json", std::move(out));
}

awaitable<void> sessionDelete(SandboxManager& mgr, const std::string& id, const std::string& sid,
                              Responder& res) {
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    json body = {{"sessionId", sid}};
    std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string reply;
    int status = co_await agentCall(mgr, sb, "/api/session/delete", payload, reply);
    if (status != 200) {
        const std::string message = "session delete failed: " + agentMessage(status, reply);
        co_return co_await sendError(res, 502, "session_error", message);
    }
    json r = json::parse(reply, nullptr, false);
    std::string ts = r.is_object() && r.contains("timestamp") && r["timestamp"].is_string()
                         ? r["timestamp"].get<std::string>()
                         : core::isoTimestampNow();
    co_await res.send(200, "application/json", wire::sessionDeletedJson(sid, ts));
}

// ---- persist / hydrate (§5.9, §5.10) -------------------------------------------------------

awaitable<void> persist(SandboxManager& mgr, const std::string& id, Request& req, Responder& res) {
    std::vector<std::string> excludes;
    if (!wire::parseExcludes(wire::firstQueryParam(req.query, "excludes"), excludes))
        co_return co_await sendError(res, 400, "invalid_request",
                                     "exclude paths must not contain \"..\"");
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    std::unique_ptr<WorkspaceTar> tar;
    std::string failure;
    try {
        tar = std::make_unique<WorkspaceTar>(sb->workspace, excludes);
    } catch (const std::exception& e) {
        failure = e.what();
    }
    if (!tar) {
        const std::string message = "persist failed: " + failure;
        co_return co_await sendError(res, 502, "workspace_archive_read_error", message);
    }
    co_await res.beginStream(200, "application/octet-stream");
    std::string piece;
    for (;;) {
        piece.clear();
        bool more = false;
        try {
            more = tar->next(piece);
        } catch (const std::exception&) {
            break;  // the archive ends without its end marker: readers see it is cut short
        }
        if (!piece.empty()) {
            res.queueRaw(piece);
            bool sent = co_await res.flush();
            if (!sent) break;
        }
        if (!more) break;
    }
    co_await res.endSse();
}

awaitable<void> hydrate(SandboxManager& mgr, const std::string& id, Request& req, Responder& res) {
    if (req.body.empty())
        co_return co_await sendError(res, 400, "invalid_request", "Empty tar payload");
    if (req.body.size() > wire::kMaxHydrateBytes) {
        const std::string message = "tar payload too large: " + std::to_string(req.body.size()) +
                                    " bytes exceeds the 33554432-byte limit";
        co_return co_await sendError(res, 400, "invalid_request", message);
    }
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    // Extraction runs on its own thread (tens of milliseconds for 32 MiB), not on the loop.
    auto data = std::make_shared<std::string>(std::move(req.body));
    auto result = std::make_shared<std::string>();
    auto ex = co_await net::this_coro::executor;
    auto done = std::make_shared<server::Event>(ex);
    HydrateLimits limits;
    limits.maxEntryBytes = mgr.config().limits.maxFileBytes;
    std::thread([ws = sb->workspace, data, result, done, ex, limits, owner = mgr.ownerOf(*sb)] {
        try {
            *result = extractToWorkspace(ws, *data, limits, owner);
        } catch (const std::exception& e) {
            *result = e.what();
        }
        net::post(ex, [done] { done->set(); });
    }).detach();
    co_await done->wait();
    if (!result->empty()) {
        const std::string message = "tar extract failed: " + *result;
        co_return co_await sendError(res, 502, "workspace_archive_write_error", message);
    }
    co_await sendOk(res);
}

// ---- mount / unmount (§5.11, §5.12) --------------------------------------------------------

// What `f` threw ("" when it did not): for coroutines, which cannot co_await in a handler.
template <typename F>
std::string failureOf(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return {};
}

// Credentials of a remote mount: the request's, else sandboxd's R2_* or AWS_* variables (as
// the SDK looks them up).
std::optional<std::pair<std::string, std::string>> mountCredentials(const wire::MountRequest& m) {
    if (m.credentials) return m.credentials;
    for (auto [id, secret] : {std::pair{"R2_ACCESS_KEY_ID", "R2_SECRET_ACCESS_KEY"},
                              std::pair{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}}) {
        const char* a = std::getenv(id);
        const char* b = std::getenv(secret);
        if (a && *a && b && *b) return std::pair<std::string, std::string>{a, b};
    }
    return std::nullopt;
}

awaitable<void> mount(SandboxManager& mgr, const std::string& id, Request& req, Responder& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded())
        co_return co_await sendError(res, 400, "invalid_request", "Invalid JSON body");
    if (body.is_null()) co_return co_await sendInternalError(res);
    wire::MountRequest m;
    std::string bad = wire::MountRequest::parse(body, m);
    if (!bad.empty()) co_return co_await sendError(res, 400, "invalid_request", bad);
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    const unsigned generation = sb->generation;
    // The SDK's own checks come first (§5.11), then what this machine lacks.
    const std::string path = normaliseSandboxPath(m.mountPath);
    const std::string key = wire::fileUrlPathname(m.mountPath);
    std::string why;
    std::optional<std::pair<std::string, std::string>> creds;
    if (m.prefix && (m.prefix->empty() || (*m.prefix)[0] != '/'))
        why = "Prefix must start with '/': " + *m.prefix;
    else if (m.bucket.find(':') != std::string::npos)
        why = "Invalid bucket name: " + m.bucket;
    else if (!m.remote)
        why =
            "R2 bindings exist only inside a Cloudflare Worker; sandboxd mounts S3-compatible "
            "buckets given by options.endpoint";
    else if (std::string no = bucketMountsUnavailable(mgr.config().isolation == Isolation::Bwrap);
             !no.empty())
        why = "S3 bucket mounts are not available on this host: " + no;
    else if (std::string refused = mountPathRefused(path); !refused.empty())
        why = refused;
    else if (std::any_of(sb->mounts.begin(), sb->mounts.end(),
                         [&](const BucketMount& b) { return b.path == path || b.key == key; }))
        why = "Mount path already in use: " + m.mountPath;
    else if (!(creds = mountCredentials(m)))
        why =
            "no credentials: give options.credentials, or set R2_ACCESS_KEY_ID and "
            "R2_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) for sandboxd";
    else if (m.s3fsOptions)
        for (const auto& o : *m.s3fsOptions)
            if (why = s3fsOptionRefused(o); !why.empty()) break;
    if (!why.empty()) {
        const std::string message = "mount failed: " + why;
        co_return co_await sendError(res, 502, "mount_error", message);
    }

    BucketSpec spec;
    spec.bucket = m.bucket;
    spec.endpoint = *m.endpoint;
    spec.prefix = m.prefix.value_or("");
    spec.readOnly = m.readOnly.value_or(false);
    spec.accessKeyId = creds->first;
    spec.secretAccessKey = creds->second;
    spec.s3fsOptions = m.s3fsOptions.value_or(std::vector<std::string>{});
    BucketMount bm;
    bm.path = path;
    bm.key = key;
    bm.hostDir = mgr.config().stateDir + "/mounts/" + id + "-" + std::to_string(++sb->mountSeq);
    const std::string logPath = bm.hostDir + ".log";
    if (::mkdir(bm.hostDir.c_str(), 0700) != 0) {
        const std::string message =
            "mount failed: cannot create " + bm.hostDir + ": " + std::strerror(errno);
        co_return co_await sendError(res, 502, "mount_error", message);
    }
    std::string spawnError = failureOf([&] { bm.s3fs = startS3fs(spec, bm.hostDir, logPath); });
    if (!spawnError.empty()) {
        releaseHostSide(bm);
        const std::string message = "mount failed: cannot start s3fs: " + spawnError;
        co_return co_await sendError(res, 502, "mount_error", message);
    }
    // s3fs checks the bucket, then mounts (or exits with the reason in its log).
    net::steady_timer timer(co_await net::this_coro::executor);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    bool mounted = false, exited = false;
    // The mount appears before s3fs has checked the bucket (in its file system's init, which
    // unmounts again on failure): a stat of the root waits for that init, on a thread of its
    // own (a FUSE call blocks), then the mount must still be there.
    std::future<int> initDone;
    auto s3fsExited = [&] {
        int status = 0;
        if (::waitpid(bm.s3fs, &status, WNOHANG) != bm.s3fs) return false;
        os::forgetChild(bm.s3fs);
        bm.s3fs = -1;
        return exited = true;
    };
    for (;;) {
        if (!initDone.valid() && isMountPoint(bm.hostDir))
            initDone = std::async(std::launch::async, [dir = bm.hostDir] {
                struct stat st {};
                return ::stat(dir.c_str(), &st);
            });
        if (initDone.valid() &&
            initDone.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
            const int rc = initDone.get();
            if (s3fsExited()) break;
            mounted = rc == 0 && isMountPoint(bm.hostDir);
            if (mounted) break;
        }
        if (s3fsExited()) break;
        if (std::chrono::steady_clock::now() > deadline) break;
        timer.expires_after(std::chrono::milliseconds(10));
        boost::system::error_code ec;
        co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    }
    if (!mounted) {
        if (initDone.valid()) {
            // Unblock the stat (if s3fs hangs) before waiting for its thread.
            ::umount2(bm.hostDir.c_str(), MNT_DETACH);
            initDone.wait();
        }
        std::string log;
        if (std::ifstream f(logPath); f) {
            char buf[16384];
            f.read(buf, sizeof buf);
            log.assign(buf, static_cast<size_t>(f.gcount()));
        }
        releaseHostSide(bm);
        while (!log.empty() && (log.back() == '\n' || log.back() == ' ')) log.pop_back();
        if (auto nl = log.rfind('\n'); nl != std::string::npos) log = log.substr(nl + 1);
        // "<time> [CRT] s3fs.cpp:s3fs_check_service(3593): bucket or key not found(...)"
        if (auto at = log.find("): "); at != std::string::npos && log.find(" [") < at)
            log = log.substr(at + 3);
        const std::string message =
            "mount failed: s3fs " +
            std::string(exited ? "could not mount the bucket" : "did not mount it within 30 s") +
            (log.empty() ? std::string() : ": " + log);
        co_return co_await sendError(res, 502, "mount_error", message);
    }
    // The sandbox may have been restarted meanwhile: attach into the launch that asked.
    std::shared_ptr<Sandbox> now = mgr.find(id);
    pid_t nsPid =
        now == sb && sb->generation == generation && sb->ready ? sandboxNamespacePid(sb->pid) : -1;
    std::string error =
        nsPid > 0 ? failureOf([&] { attachInto(nsPid, bm.hostDir, bm.path, mgr.ownerOf(*sb)); })
                  : std::string("the sandbox stopped");
    if (!error.empty()) {
        releaseHostSide(bm);
        const std::string message = "mount failed: " + error;
        co_return co_await sendError(res, 502, "mount_error", message);
    }
    ::unlink(logPath.c_str());
    sb->mounts.push_back(std::move(bm));
    co_await sendOk(res);
}

awaitable<void> unmount(SandboxManager& mgr, const std::string& id, Request& req, Responder& res) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded())
        co_return co_await sendError(res, 400, "invalid_request", "Invalid JSON body");
    if (body.is_null()) co_return co_await sendInternalError(res);
    wire::UnmountRequest u;
    std::string bad = wire::UnmountRequest::parse(body, u);
    if (!bad.empty()) co_return co_await sendError(res, 400, "invalid_request", bad);
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    // Found by the route's normalisation (§5.12), or by the plain one ("/mnt/a b").
    auto it = std::find_if(sb->mounts.begin(), sb->mounts.end(), [&](const BucketMount& b) {
        return b.key == u.mountPath || b.path == normaliseSandboxPath(u.mountPath);
    });
    if (it == sb->mounts.end()) {
        const std::string message =
            "unmount failed: No active mount found for path: " + u.mountPath;
        co_return co_await sendError(res, 502, "unmount_error", message);
    }
    pid_t nsPid = sandboxNamespacePid(sb->pid);
    std::string error =
        nsPid > 0 ? failureOf([&] { detachFrom(nsPid, it->path, mgr.ownerOf(*sb)); }) : "";
    if (!error.empty()) {
        const std::string message = "unmount failed: " + error;
        co_return co_await sendError(res, 502, "unmount_error", message);
    }
    releaseHostSide(*it);
    sb->mounts.erase(it);
    co_await sendOk(res);
}

// ---- tunnels (§4.6, §5.16) ------------------------------------------------------------------

// JavaScript Number(s) for a port segment: white space trimmed, "" is 0, 0x/0o/0b prefixes,
// decimal with fraction and exponent, Infinity. nullopt for NaN.
std::optional<double> jsNumber(std::string_view s) {
    auto b = s.find_first_not_of(" \t\n\r\f\v");
    if (b == std::string_view::npos) return 0.0;
    s = s.substr(b, s.find_last_not_of(" \t\n\r\f\v") - b + 1);
    if (s.size() > 2 && s[0] == '0' && std::strchr("xXoObB", s[1])) {
        int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
        double v = 0;
        for (char c : s.substr(2)) {
            int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                    : std::isalpha(static_cast<unsigned char>(c))
                        ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                        : 99;
            if (d >= base) return std::nullopt;
            v = v * base + d;
        }
        return v;
    }
    std::string t(s);
    if (t == "Infinity" || t == "+Infinity") return HUGE_VAL;
    if (t == "-Infinity") return -HUGE_VAL;
    for (char c : t)
        if (!std::isdigit(static_cast<unsigned char>(c)) && !std::strchr("+-.eE", c))
            return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(t.c_str(), &end);
    if (!end || *end) return std::nullopt;
    return v;
}

bool validTunnelPort(std::string_view seg) {
    auto v = jsNumber(seg);
    return v && std::floor(*v) == *v && *v >= 1024 && *v <= 65535 && *v != 3000;
}

// JavaScript's String.length of UTF-8 text: code units of UTF-16.
std::size_t utf16Length(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) {
        if ((c & 0xC0) != 0x80) ++n;
        if (c >= 0xF0) ++n;  // a surrogate pair
    }
    return n;
}

bool dnsLabel(const std::string& n) {
    if (n.empty() || n.front() == '-' || n.back() == '-') return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    return true;
}

awaitable<void> tunnel(SandboxManager& mgr, const std::string& id, const std::string& portSeg,
                       Request& req, Responder& res) {
    if (!validTunnelPort(portSeg))
        co_return co_await sendError(res, 400, "invalid_request", "Invalid port");
    if (req.method == "POST" && !core::trim(req.body, " \t").empty() &&
        req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        json body = json::parse(req.body, nullptr, false);
        if (body.is_discarded())
            co_return co_await sendError(res, 400, "invalid_request", "Invalid JSON body");
        if (body.is_object() && body.contains("name")) {
            const json& n = body["name"];
            if (!n.is_string())
                co_return co_await sendError(res, 400, "invalid_request",
                                             "name must be a string when provided");
            std::string name = n.get<std::string>();
            if (name.empty() || utf16Length(name) > 63) {
                const std::string message = "Tunnel name '" + name +
                                            "' must be 1\u2013"
                                            "63 characters long.";
                co_return co_await sendError(res, 400, "invalid_request", message);
            }
            if (!dnsLabel(name)) {
                const std::string message =
                    "Tunnel name '" + name +
                    "' is not a valid DNS label. Use lowercase letters, digits, and internal "
                    "hyphens only (no dots, no leading/trailing hyphens).";
                co_return co_await sendError(res, 400, "invalid_request", message);
            }
        }
    }
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    if (req.method == "DELETE")  // no tunnel can exist, so there is none to stop
        co_return co_await res.send(204, "", "");
    co_await sendError(res, 502, "tunnel_error",
                       "tunnel failed: public tunnels need cloudflared and network access, which "
                       "sandboxd sandboxes do not have");
}

// ---- pool (§5.17) --------------------------------------------------------------------------

awaitable<void> pool(SandboxManager& mgr, const std::string& path, Request& req, Responder& res) {
    if (path == "/v1/pool/stats" && (req.method == "GET" || req.method == "HEAD"))
        co_return co_await res.send(200, "application/json", mgr.poolStats().toJson());
    if (path == "/v1/pool/prime" && req.method == "POST") {
        mgr.primePool();
        co_return co_await sendOk(res);
    }
    if (path == "/v1/pool/shutdown-prewarmed" && req.method == "POST") {
        mgr.shutdownPrewarmed();
        co_return co_await sendOk(res);
    }
    co_await res.send(404, "text/plain; charset=UTF-8", "404 Not Found");
}

}  // namespace

awaitable<void> touchSession(SandboxManager& mgr, std::shared_ptr<Sandbox> sb,
                             const std::string& sid) {
    json body = {{"id", sid}};
    std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string reply;
    co_await agentCall(mgr, sb, "/api/session/create", payload, reply);  // 409: it exists
}

bool isOpenApiPath(std::string_view path) {
    return path == "/v1/openapi.json" || path == "/v1/openapi" || path == "/v1/openapi.html";
}

awaitable<bool> serveTopLevelExtra(SandboxManager& mgr, Request& req, Responder& res) {
    const std::string& path = req.path;
    if (path.rfind("/v1/pool/", 0) == 0) {
        co_await pool(mgr, path, req, res);
        co_return true;
    }
    if (isOpenApiPath(path)) {
        if (req.method != "GET" && req.method != "HEAD") {
            co_await res.send(404, "text/plain; charset=UTF-8", "404 Not Found");
            co_return true;
        }
        if (path == "/v1/openapi.json") {
            std::string doc = openApiJson();
            co_await res.send(200, "application/json", std::move(doc));
        } else {
            std::string html = openApiHtml();
            co_await res.send(200, "text/html; charset=utf-8", std::move(html));
        }
        co_return true;
    }
    co_return false;
}

awaitable<bool> serveSandboxExtra(SandboxManager& mgr, const std::string& id,
                                  const std::string& sub, Request& req, Responder& res) {
    const std::string& m = req.method;
    if (sub == "/session" && m == "POST") {
        co_await sessionCreate(mgr, id, req, res);
        co_return true;
    }
    if (sub.rfind("/session/", 0) == 0 && m == "DELETE") {
        std::string seg = sub.substr(9);
        if (seg.empty() || seg.find('/') != std::string::npos) co_return false;
        // The route parameter is decoded once more (decodeURIComponent, §2.3).
        std::string sid = wire::formDecode(seg);
        if (seg.find('+') != std::string::npos) {  // '+' is not a space in a path
            sid.clear();
            for (size_t i = 0, j; i <= seg.size(); i = j + 1) {
                j = seg.find('+', i);
                if (j == std::string::npos) j = seg.size();
                if (i) sid += '+';
                sid += wire::formDecode(seg.substr(i, j - i));
            }
        }
        co_await sessionDelete(mgr, id, sid, res);
        co_return true;
    }
    if (sub.rfind("/tunnel/", 0) == 0 && (m == "POST" || m == "DELETE") &&
        sub.find('/', 8) == std::string::npos && sub.size() > 8) {
        co_await tunnel(mgr, id, sub.substr(8), req, res);
        co_return true;
    }
    if (m != "POST") co_return false;
    if (sub == "/persist") {
        co_await persist(mgr, id, req, res);
        co_return true;
    }
    if (sub == "/hydrate") {
        co_await hydrate(mgr, id, req, res);
        co_return true;
    }
    if (sub == "/mount") {
        co_await mount(mgr, id, req, res);
        co_return true;
    }
    if (sub == "/unmount") {
        co_await unmount(mgr, id, req, res);
        co_return true;
    }
    co_return false;
}

}  // namespace sandbox::daemon
