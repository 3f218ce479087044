#pragma once
// How the bridge API speaks HTTP, shared by sandboxd's route handlers (handlers.hpp) and its
// WebSocket proxies: the error body, the `Session-Id` header, and the first steps of every
// sandbox route: start the sandbox, call its agent. See docs/sandboxd.md.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/sandbox_manager.hpp"
#include "server/http_call.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

/// The SSE keep-alive of quiet streams (/exec, streamed agent routes).
inline constexpr auto kKeepAlive = std::chrono::seconds(15);

/// The bridge's error body: {"error":...,"code":...} in that key order, compact.
std::string errorBody(std::string_view message, std::string_view code);
/// Sends `status` with errorBody(message, code) as application/json.
awaitable<void> sendError(server::Responder& res, int status, std::string_view code,
                          std::string_view message);
/// The answer when no route matches: 404 text/plain "404 Not Found" (wrong methods too).
awaitable<void> sendNotFound(server::Responder& res);
/// The reference's answer to a handler that crashed: 500 text/plain "Internal Server Error"
/// (its JSON body `null`, for instance).
awaitable<void> sendInternalError(server::Responder& res);
/// 200 {"ok":true}
awaitable<void> sendOk(server::Responder& res);

/// A session id the bridge accepts: 1-128 of [A-Za-z0-9._-], no "..".
bool validSessionId(std::string_view s);
/// The `Session-Id` header: repeated ones joined with ", ", trimmed; nullopt when absent or
/// empty. `invalid` is set when it is not a valid session id.
std::optional<std::string> sessionHeader(const server::Request& req, bool& invalid);

/// The running sandbox `id` (started when needed), or null with the answer sent:
/// 503 capacity_exceeded or 502 pool_error "pool error: ...".
awaitable<std::shared_ptr<Sandbox>> ensureOrReply(SandboxManager& mgr, const std::string& id,
                                                  server::Responder& res);

/// One JSON POST to the sandbox's agent. Returns the HTTP status, or -1 when the agent could
/// not be reached (the sandbox is then marked broken, so the next request restarts it).
awaitable<int> agentCall(SandboxManager& mgr, const std::shared_ptr<Sandbox>& sb,
                         const std::string& path, const std::string& body, std::string& reply);
/// The message of a container-API error body (`reply` itself for -1, else the status).
std::string agentMessage(int status, const std::string& reply);
/// Makes sure session `sid` exists in the sandbox's agent (get-or-create, as the reference's
/// file routes do with a Session-Id). Failures are ignored (the file operation goes on).
awaitable<void> touchSession(SandboxManager& mgr, std::shared_ptr<Sandbox> sb,
                             const std::string& sid);

/// The HTTP client of a sandbox's agent, on its unix socket.
server::HttpPeer agentPeer(const Sandbox& sb);

/// A call to the agent of `sb`, connected when it could be. An agent that has just died while
/// its launcher lives on for a moment refuses the connection before anything reached it: that
/// launch is then replaced (`sb` becomes the running sandbox; its workspace survives) and the
/// connection tried once more, so the request is served and nothing runs twice. Otherwise a
/// failed connection is returned unconnected, error() saying why (start() fails with it).
awaitable<std::shared_ptr<server::HttpCall>> connectAgent(SandboxManager& mgr,
                                                          std::shared_ptr<Sandbox>& sb);

}  // namespace sandbox::daemon
