#pragma once
// The bridge `/v1` API (bridge-api §2-§7) served by sandboxd, plus the agent passthrough
// extension `/v1/sandbox/:id/agent/<container route>`.
#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

server::Handler makeBridgeRouter(SandboxManager& manager);

/// A session id the bridge accepts: 1-128 of [A-Za-z0-9._-], no "..".
bool validSessionId(std::string_view s);
/// Whether the request carries exactly one `Authorization: Bearer <key>` (prefix compared
/// case-insensitively when asked, the key in constant time); true when no key is configured.
bool authorized(const SandboxManager& mgr, const server::Request& req, bool caseInsensitivePrefix);
/// The running sandbox `id` (started when needed), or null with the answer sent:
/// 503 capacity_exceeded or 502 pool_error "pool error: ...".
awaitable<std::shared_ptr<Sandbox>> ensureOrReply(SandboxManager& mgr, const std::string& id,
                                                  server::Responder& res);

/// Constant-time string comparison (for the API key).
bool constantTimeEquals(std::string_view a, std::string_view b);

/// The bridge's error body (§2.2): {"error":...,"code":...} in that key order, compact.
std::string errorBody(std::string_view message, std::string_view code);
/// Sends `status` with errorBody(message, code) as application/json.
awaitable<void> sendError(server::Responder& res, int status, std::string_view code,
                          std::string_view message);

}  // namespace sandbox::daemon
