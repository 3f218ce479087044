#pragma once
// sandboxd's HTTP API (docs/sandboxd.md): the bridge `/v1` routes, wire-compatible with
// Cloudflare's bridge, plus the agent passthrough `/v1/sandbox/:id/agent/<container route>`.
// The route table (bridge_routes.cpp) and the checks made before any route: the sandbox id, then
// authentication.
#include <functional>
#include <optional>
#include <string>

#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

/// The request handler serving the whole API for `manager` (which must outlive it).
server::Handler makeBridgeRouter(SandboxManager& manager);

/// Whether the request carries exactly one `Authorization: Bearer <key>` (prefix compared
/// case-insensitively when asked, the key in constant time); true when no key is configured.
bool authorized(const SandboxManager& mgr, const server::Request& req, bool caseInsensitivePrefix);

/// An answer the bridge gives from a request's head alone.
struct HeadRefusal {
    int status = 0;
    std::string code;
    std::string message;
};
/// The bridge's checks that need only the request's head, in the reference's order: an invalid
/// sandbox id, checked on the raw path segment (400 invalid_request), then the API key on the
/// routes that need it (401 unauthorized): /v1/sandbox... with a case-insensitive "bearer "
/// prefix, /v1/pool/* and GET /v1/openapi* with an exact "Bearer " (the OpenAPI routes also take
/// ?token=). nullopt when the request goes on to its route (/health and paths outside these need
/// no key). The router checks this first; sandboxd's server calls it too (bridgeHeadCheck),
/// before reading a body.
std::optional<HeadRefusal> refuseFromHead(const SandboxManager& mgr, const server::Request& req);
/// ServerOptions::checkHead for sandboxd: refuseFromHead's answer as the bridge's JSON error,
/// so that an unauthenticated upload is refused without its body being read.
std::function<std::optional<server::CannedResponse>(const server::Request&)> bridgeHeadCheck(
    const SandboxManager& mgr);
/// ServerOptions::hijack for sandboxd: a request whose Host is an active preview URL's
/// (ports.hpp) is taken over and forwarded, connection and all, to the port in the sandbox.
std::function<server::RawHandler(const server::Request&)> previewHijack(SandboxManager& mgr);
/// The preview answers that are not forwards: 404 INVALID_TOKEN (unknown sandbox, port or token,
/// or a revoked one), 410 STALE_PREVIEW_URL (exposed in an earlier launch of the sandbox).
/// nullopt when the Host is no preview URL's. bridgeHeadCheck gives these first.
std::optional<server::CannedResponse> previewRefusal(const SandboxManager& mgr,
                                                     const server::Request& head);
/// The handler of a preview-only listener (--preview-listen): every request that is no preview
/// URL's is the plain 404.
server::Handler makePreviewOnlyRouter();

/// ServerOptions::refusalBody for sandboxd: the server's own refusals in the bridge's error
/// style: payload_too_large for a 413, capacity_exceeded for a 503, invalid_request for the
/// other 4xx.
std::string bridgeRefusalBody(const server::Refusal& refusal);

/// Constant-time string comparison (for the API key).
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace sandbox::daemon
