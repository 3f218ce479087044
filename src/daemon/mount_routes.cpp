// Bucket mounts (docs/sandboxd.md): POST /v1/sandbox/{id}/mount and /unmount. sandboxd runs
// s3fs on the host side and attaches the mount into the sandbox's mount namespace (mounts.hpp).
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "core/wire_bridge.hpp"
#include "daemon/handlers.hpp"
#include "daemon/mounts.hpp"
#include "daemon/paths.hpp"

namespace sandbox::daemon::mount_routes {
using nlohmann::json;
namespace wire = core::wire;

namespace {

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

}  // namespace

awaitable<void> mount(SandboxManager& mgr, Request& req, Responder& res,
                      const RouteParams& params) {
    const std::string& id = params["id"];
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
    // The SDK's own checks come first (as the reference's mount route makes them), then what
    // this machine lacks.
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

awaitable<void> unmount(SandboxManager& mgr, Request& req, Responder& res,
                        const RouteParams& params) {
    const std::string& id = params["id"];
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded())
        co_return co_await sendError(res, 400, "invalid_request", "Invalid JSON body");
    if (body.is_null()) co_return co_await sendInternalError(res);
    wire::UnmountRequest u;
    std::string bad = wire::UnmountRequest::parse(body, u);
    if (!bad.empty()) co_return co_await sendError(res, 400, "invalid_request", bad);
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    // Found by the route's normalisation (mounts.hpp, BucketMount::key), or by the plain one
    // ("/mnt/a b").
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

}  // namespace sandbox::daemon::mount_routes
