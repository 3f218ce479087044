// The workspace's files (docs/sandboxd.md): GET and PUT /v1/sandbox/{id}/file/<path>, one file
// as raw bytes, served from the host side (openat2 with RESOLVE_IN_ROOT keeps every path inside
// the workspace); POST /persist and /hydrate, the whole workspace as a tar archive (archive.hpp).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "core/wire_bridge.hpp"
#include "daemon/archive.hpp"
#include "daemon/handlers.hpp"
#include "daemon/workspace_fs.hpp"

namespace sandbox::daemon::file_routes {
namespace wire = core::wire;

namespace {

constexpr std::size_t kMaxFileBody = 32ull * 1024 * 1024;

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

}  // namespace

awaitable<void> read(SandboxManager& mgr, Request& req, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    const std::string& rel = params["path"];
    int status = 0;
    std::string message;
    std::string path = filePath(rel, status, message);
    if (status) co_return co_await sendError(res, status, "invalid_request", message);
    bool badSession = false;
    auto sid = sessionHeader(req, badSession);
    if (badSession)
        co_return co_await sendError(res, 400, "invalid_request", "Invalid session ID format");
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    if (sid) co_await touchSession(mgr, sb, *sid);  // the operation's session exists after it
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

awaitable<void> write(SandboxManager& mgr, Request& req, Responder& res,
                      const RouteParams& params) {
    const std::string& id = params["id"];
    const std::string& rel = params["path"];
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
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    if (sid) co_await touchSession(mgr, sb, *sid);
    std::string inside = path.substr(1);  // "workspace/...", resolved as for reads
    int fd =
        inside == "workspace" ? -EISDIR : createInWorkspace(sb->root, inside, mgr.ownerOf(*sb));
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

awaitable<void> persist(SandboxManager& mgr, Request& req, Responder& res,
                        const RouteParams& params) {
    const std::string& id = params["id"];
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

awaitable<void> hydrate(SandboxManager& mgr, Request& req, Responder& res,
                        const RouteParams& params) {
    const std::string& id = params["id"];
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

}  // namespace sandbox::daemon::file_routes
