#pragma once
// The container API's route handlers, one namespace per file, a file per resource; routes.cpp
// puts each on its method and path (the one table of the API). A handler reads the request
// (body, query, headers, path parameters), calls the services (agent.hpp, exec.hpp, files.hpp,
// git.hpp, watch.hpp, ports.hpp) and writes their answer; a core::ApiError it throws becomes the
// API's error envelope (routes.cpp). The route files are compiled as one unit (CMakeLists.txt):
// each keeps its helpers inside its own namespace.
#include <optional>
#include <string>

#include "agent/agent.hpp"
#include "server/http_server.hpp"
#include "server/router.hpp"

namespace sandbox::agent {

using server::Request;
using server::Responder;
using server::RouteParams;

/// The context session id: `Authorization: Bearer <id>`, then `X-Session-Id`, then `?session=`,
/// then `?sessionId=`; nullopt when none is given. Commands and git checkouts fall back to it
/// when their body names no session (docs/agent.md). Defined in routes.cpp.
std::optional<std::string> contextSessionId(const Request& req);

/// exec_routes.cpp: sessions and commands.
namespace exec_routes {
awaitable<void> sessionCreate(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> sessionList(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> sessionDelete(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> execute(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> executeStream(Agent&, Request&, Responder&, const RouteParams&);
}  // namespace exec_routes

/// file_routes.cpp: files.
namespace file_routes {
awaitable<void> read(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> readStream(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> write(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> remove(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> rename(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> move(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> mkdir(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> list(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> exists(Agent&, Request&, Responder&, const RouteParams&);
}  // namespace file_routes

/// process_routes.cpp: background processes (`{id}`: the process id) and port readiness.
namespace process_routes {
awaitable<void> start(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> list(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> killAll(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> get(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> kill(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> logs(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> stream(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> portWatch(Agent&, Request&, Responder&, const RouteParams&);
}  // namespace process_routes

/// git_routes.cpp: git checkout.
namespace git_routes {
awaitable<void> checkout(Agent&, Request&, Responder&, const RouteParams&);
}  // namespace git_routes

/// watch_routes.cpp: file watches.
namespace watch_routes {
awaitable<void> watch(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> check(Agent&, Request&, Responder&, const RouteParams&);
}  // namespace watch_routes

/// interpreter_routes.cpp: the code interpreter (`{id}`: a context id).
namespace interpreter_routes {
awaitable<void> health(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> createContext(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> listContexts(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> deleteContext(Agent&, Request&, Responder&, const RouteParams&);
awaitable<void> executeCode(Agent&, Request&, Responder&, const RouteParams&);
}  // namespace interpreter_routes

}  // namespace sandbox::agent
