#pragma once
// HTTP routes of the container API (container-api §2-§3) over the Agent services.
#include "agent/agent.hpp"
#include "server/http_server.hpp"

namespace sandbox::agent {

/// The request handler serving every route of the container API for `agent`.
server::Handler makeRouter(Agent& agent);

}  // namespace sandbox::agent
