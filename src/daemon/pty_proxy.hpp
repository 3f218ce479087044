#pragma once
// sandboxd's WebSocket relays to a sandbox's agent (over its unix socket), frames both ways; the
// agent's refusal, if any, is passed back as it is. GET /v1/sandbox/:id/pty (the bridge's
// terminal; docs/pty.md: checks the upgrade, cols/rows and the session, then opens the agent's
// /ws/pty) is pty_routes::pty (handlers.hpp); the agent passthrough's upgrades come here too.
#include <string>

#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"

namespace sandbox::daemon {

/// The agent passthrough for WebSockets: `/v1/sandbox/:id/agent/<target>` with an upgrade
/// (e.g. `ws/pty?sessionId=...`, or `ws` for the route multiplexer) is relayed to the agent's
/// `<target>` (auth and the id were checked by the caller).
awaitable<void> agentWebSocketProxy(SandboxManager& mgr, const std::string& id,
                                    const std::string& target, server::Request& req,
                                    server::Responder& res);

}  // namespace sandbox::daemon
