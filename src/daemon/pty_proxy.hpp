#pragma once
// GET /v1/sandbox/:id/pty (bridge-api §5.15, §9): checks the upgrade, cols/rows and the
// session, then opens the agent's /ws/pty inside the sandbox (over its unix socket) and relays
// frames both ways. The agent's refusal, if any, is passed back as it is.
#include <string>

#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

/// Serves the PTY route for sandbox `id` (auth and the id were checked by the caller).
awaitable<void> ptyProxy(SandboxManager& mgr, const std::string& id, server::Request& req,
                         server::Responder& res);

/// The agent passthrough for WebSockets: `/v1/sandbox/:id/agent/<target>` with an upgrade
/// (e.g. `ws/pty?sessionId=...`, or `ws` for the route multiplexer) is relayed to the agent's
/// `<target>` (auth and the id were checked by the caller).
awaitable<void> agentWebSocketProxy(SandboxManager& mgr, const std::string& id,
                                    const std::string& target, server::Request& req,
                                    server::Responder& res);

}  // namespace sandbox::daemon
