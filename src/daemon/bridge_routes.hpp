#pragma once
// The bridge `/v1` API (bridge-api §2-§7) served by sandboxd, plus the agent passthrough
// extension `/v1/sandbox/:id/agent/<container route>`.
#include <functional>
#include <optional>
#include <string>

#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

server::Handler makeBridgeRouter(SandboxManager& manager);

/// A session id the bridge accepts: 1-128 of [A-Za-z0-9._-], no "..".
bool validSessionId(std::string_view s);
/// Whether the request carries exactly one `Authorization: Bearer <key>` (prefix compared
/// case-insensitively when asked, the key in constant time); true when no key is configured.
bool authorized(const SandboxManager& mgr, const server::Request& req, bool caseInsensitivePrefix);

/// An answer the bridge gives from a request's head alone.
struct HeadRefusal {
    int status = 0;
    std::string code;
    std::string message;
};
/// The bridge's checks that need only the request's head, in the router's order (§1.2, §3): an
/// invalid sandbox id (400 invalid_request), then the API key on the routes that need it (401
/// unauthorized: /v1/sandbox..., /v1/pool/*, GET /v1/openapi*, which also takes ?token=).
/// nullopt when the request goes on to its route (/health and paths outside these need no key).
/// The router checks this first; sandboxd's server calls it too (bridgeHeadCheck), before
/// reading a body.
std::optional<HeadRefusal> refuseFromHead(const SandboxManager& mgr, const server::Request& req);
/// ServerOptions::checkHead for sandboxd: refuseFromHead's answer as the bridge's JSON error,
/// so that an unauthenticated upload is refused without its body being read.
std::function<std::optional<server::CannedResponse>(const server::Request&)> bridgeHeadCheck(
    const SandboxManager& mgr);
/// ServerOptions::refusalBody for sandboxd: the server's own refusals in the bridge's error
/// style: payload_too_large for a 413, capacity_exceeded for a 503, invalid_request for the
/// other 4xx.
std::string bridgeRefusalBody(const server::Refusal& refusal);
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
