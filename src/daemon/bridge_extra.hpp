#pragma once
// The bridge routes beyond exec/file/running (bridge-api §5.2, §5.9-§5.14, §5.17): sessions,
// persist/hydrate, mount/unmount, the warm pool and the OpenAPI document. Called by the router
// in bridge_routes.cpp.
#include <string>

#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

/// /v1/pool/* and /v1/openapi{,.json,.html}. Their own auth rules (§3) are refuseFromHead's
/// (bridge_routes.hpp), checked by the router first. Returns false when the path is none of
/// them (nothing was sent).
awaitable<bool> serveTopLevelExtra(SandboxManager& mgr, server::Request& req,
                                   server::Responder& res);

/// Whether `path` is one of the OpenAPI document's routes (/v1/openapi{,.json,.html}).
bool isOpenApiPath(std::string_view path);

/// /v1/sandbox/:id/{session,session/:sid,persist,hydrate,mount,unmount}; `sub` is the decoded
/// path after the id ("/persist"). Auth and the id check are done. Returns false when it is
/// none of them (nothing was sent).
awaitable<bool> serveSandboxExtra(SandboxManager& mgr, const std::string& id,
                                  const std::string& sub, server::Request& req,
                                  server::Responder& res);

/// Makes sure session `sid` exists in the sandbox's agent (get-or-create, as the reference's
/// file routes do with a Session-Id). Failures are ignored (the file operation goes on).
awaitable<void> touchSession(SandboxManager& mgr, std::shared_ptr<Sandbox> sb,
                             const std::string& sid);

}  // namespace sandbox::daemon
