// Files: /api/read, /api/read/stream, /api/write, /api/delete, /api/rename, /api/move,
// /api/mkdir, /api/list-files, /api/exists (docs/agent.md), over files.hpp. Relative paths are
// resolved against the session's current directory.
#include "agent/files.hpp"
#include "agent/handlers.hpp"
#include "core/base64.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/text.hpp"
#include "core/time.hpp"

namespace sandbox::agent::file_routes {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

namespace {

void checkPath(const std::string& path) {
    if (auto problems = core::pathProblems(path); !problems.empty())
        throw ApiError(
            "VALIDATION_FAILED", "Invalid path format for '" + path + "': " + problems,
            {{"validationErrors",
              json::array(
                  {{{"field", "path"}, {"message", problems}, {"code", "INVALID_PATH"}}})}});
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

}  // namespace

awaitable<void> read(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::ReadRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    auto abs = resolveFilePath(agent, r.path, r.sessionId);
    auto out = files::read(abs, r.path, r.encoding);
    out.timestamp = core::isoTimestampNow();
    std::string text = out.toJsonString();
    co_await res.send(200, "application/json", std::move(text));
}

awaitable<void> readStream(Agent& agent, Request& req, Responder& res, const RouteParams&) {
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

awaitable<void> write(Agent& agent, Request& req, Responder& res, const RouteParams&) {
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

awaitable<void> remove(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::PathRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    files::remove(resolveFilePath(agent, r.path, r.sessionId), r.path);
    json reply = wire::success({{"path", r.path}});
    co_await res.sendJson(200, reply);
}

namespace {

awaitable<void> moveOrRename(Agent& agent, Request& req, Responder& res, bool isRename) {
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

}  // namespace

awaitable<void> rename(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    co_await moveOrRename(agent, req, res, true);
}

awaitable<void> move(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    co_await moveOrRename(agent, req, res, false);
}

awaitable<void> mkdir(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::MkdirRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    files::mkdir(resolveFilePath(agent, r.path, r.sessionId), r.path, r.recursive);
    json reply = wire::success({{"path", r.path}, {"recursive", r.recursive}});
    co_await res.sendJson(200, reply);
}

awaitable<void> list(Agent& agent, Request& req, Responder& res, const RouteParams&) {
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

awaitable<void> exists(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::PathRequest::fromJson(core::parseJsonObject(req.body));
    checkPath(r.path);
    bool e = files::exists(resolveFilePath(agent, r.path, r.sessionId));
    json reply = wire::success({{"path", r.path}, {"exists", e}});
    co_await res.sendJson(200, reply);
}

}  // namespace sandbox::agent::file_routes
