#pragma once
// The bridge `/v1` API (bridge-api §2-§7) served by sandboxd, plus the agent passthrough
// extension `/v1/sandbox/:id/agent/<container route>`.
#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

server::Handler makeBridgeRouter(SandboxManager& manager);

/// Constant-time string comparison (for the API key).
bool constantTimeEquals(std::string_view a, std::string_view b);
/// Bridge path decoding (§2.3): percent-decodes except the reserved characters
/// `; / ? : @ & = + $ , #` and `%25`, keeping undecodable runs verbatim.
std::string decodeBridgePath(std::string_view raw);

/// The bridge's error body (§2.2): {"error":...,"code":...} in that key order, compact.
std::string errorBody(std::string_view message, std::string_view code);
/// Sends `status` with errorBody(message, code) as application/json.
awaitable<void> sendError(server::Responder& res, int status, std::string_view code,
                          std::string_view message);

}  // namespace sandbox::daemon
