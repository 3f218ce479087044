#pragma once
// The bridge API's route handlers, one namespace per file, a file per resource; bridge_routes.cpp
// puts each on its method and path (the one table of sandboxd's API). A handler checks its
// request, makes sure the sandbox runs (ensureOrReply) and answers in the bridge's style
// (bridge_http.hpp). Path parameters: `id` the sandbox id (raw, already checked), and each
// route's own (decoded as the bridge decodes a path). The route files are compiled as one unit
// (CMakeLists.txt): each keeps its helpers inside its own namespace.
#include "daemon/bridge_http.hpp"
#include "daemon/sandbox_manager.hpp"
#include "server/http_server.hpp"
#include "server/router.hpp"

namespace sandbox::daemon {

using server::Request;
using server::Responder;
using server::RouteParams;

/// sandbox_routes.cpp: sandboxes (new ids, destroy, running) and the warm pool.
namespace sandbox_routes {
awaitable<void> create(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> destroy(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> running(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> poolStats(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> poolPrime(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> poolShutdownPrewarmed(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace sandbox_routes

/// exec_routes.cpp: a command, streamed as SSE.
namespace exec_routes {
awaitable<void> exec(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace exec_routes

/// file_routes.cpp: one file (`path`: below the sandbox's root, "workspace/..."), or the whole
/// workspace as a tar archive.
namespace file_routes {
awaitable<void> read(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> write(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> persist(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> hydrate(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace file_routes

/// session_routes.cpp: sessions of the sandbox's agent (`sid`: the session id).
namespace session_routes {
awaitable<void> create(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> destroy(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace session_routes

/// mount_routes.cpp: S3-compatible buckets mounted into the sandbox.
namespace mount_routes {
awaitable<void> mount(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> unmount(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace mount_routes

/// tunnel_routes.cpp: tunnels to a port (`port`): made, destroyed, listed.
namespace tunnel_routes {
awaitable<void> tunnel(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> list(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace tunnel_routes

/// network_routes.cpp: a sandbox's network policy.
namespace network_routes {
awaitable<void> put(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> get(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace network_routes

/// port_routes.cpp: exposed ports (`port`) and their preview URLs.
namespace port_routes {
awaitable<void> expose(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> unexpose(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> status(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> validate(SandboxManager&, Request&, Responder&, const RouteParams&);
awaitable<void> list(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace port_routes

/// agent_routes.cpp: the passthrough to the sandbox's agent (`path`: the container route
/// without its leading '/'), HTTP and WebSocket.
namespace agent_routes {
awaitable<void> passthrough(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace agent_routes

/// pty_proxy.cpp: the bridge's terminal.
namespace pty_routes {
awaitable<void> pty(SandboxManager&, Request&, Responder&, const RouteParams&);
}  // namespace pty_routes

}  // namespace sandbox::daemon
