#pragma once
// The agent's WebSocket endpoints in front of its route table: /ws and /api/ws (the route
// multiplexer, container-api §6) and /ws/pty (the terminal, §7). Everything else, and those
// paths without an upgrade, go to `inner`.
#include "agent/agent.hpp"
#include "server/http_server.hpp"

namespace sandbox::agent {

server::Handler withWebSockets(Agent& agent, server::Handler inner);

}  // namespace sandbox::agent
