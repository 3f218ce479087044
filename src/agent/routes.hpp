#pragma once
// HTTP routes of the container API (container-api §2-§3) over the Agent services.
#include "agent/agent.hpp"
#include "server/http_server.hpp"

namespace sandbox::agent {

/// The request handler serving every route of the container API for `agent`.
server::Handler makeRouter(Agent& agent);

/// The context session id (§2.2): `Authorization: Bearer <id>`, then `X-Session-Id`, then
/// `?session=`, then `?sessionId=`; nullopt when none is given.
std::optional<std::string> contextSessionId(const server::Request& req);

}  // namespace sandbox::agent
