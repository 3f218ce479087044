#pragma once
// The route multiplexer on a WebSocket (GET /ws and /api/ws with an upgrade; docs/agent.md): each
// request frame runs through the container API's routes, its answer comes back as frames.
#include <memory>

#include "agent/base.hpp"
#include "server/http_server.hpp"

namespace sandbox::agent {

/// Accepts the upgrade on `res` and serves the multiplexer until the socket closes: each
/// request runs through `routes` (concurrently with the others of the socket).
awaitable<void> serveRouteMux(std::shared_ptr<server::Handler> routes, server::Responder& res);

}  // namespace sandbox::agent
