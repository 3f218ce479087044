#pragma once
// The container API's route table (routes.cpp): every route of sandbox-agent, HTTP and
// WebSocket, declared in one place, and how a request that matches none is answered.
#include "agent/agent.hpp"
#include "server/http_server.hpp"

namespace sandbox::agent {

/// The request handler serving the whole container API for `agent` (which must outlive it).
server::Handler makeRouter(Agent& agent);

}  // namespace sandbox::agent
