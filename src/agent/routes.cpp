// The container API, every route on one page: the table in Api::declareRoutes(), the handlers
// in a file per resource (handlers.hpp). Routing follows the reference server (docs/agent.md):
// an exact method and path, `{id}` one segment, no trailing-slash tolerance, the path as sent
// (not percent-decoded), the query string ignored. A request no route takes (wrong path or wrong
// method alike) is a 404 UNKNOWN_ERROR; an OPTIONS preflight gets 204 with CORS headers.
#include "agent/routes.hpp"

#include <functional>
#include <memory>
#include <system_error>

#include "agent/handlers.hpp"
#include "agent/pty.hpp"
#include "agent/ws_mux.hpp"
#include "core/errors.hpp"
#include "core/wire.hpp"

namespace sandbox::agent {

std::optional<std::string> contextSessionId(const Request& req) {
    if (auto auth = req.header("authorization");
        auth && auth->rfind("Bearer ", 0) == 0 && auth->size() > 7)
        return std::string(auth->substr(7));
    if (auto h = req.header("x-session-id"); h && !h->empty()) return std::string(*h);
    if (auto q = req.queryParam("session"); q && !q->empty()) return q;
    if (auto q = req.queryParam("sessionId"); q && !q->empty()) return q;
    return std::nullopt;
}

namespace routes {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

namespace {

// ---- about the agent -------------------------------------------------------------------------

awaitable<void> root(Agent&, Request&, Responder& res, const RouteParams&) {
    co_await res.send(200, "text/plain; charset=utf-8", "Hello from the sandbox agent! 🚀");
}

awaitable<void> ping(Agent&, Request&, Responder& res, const RouteParams&) {
    json reply = wire::success({{"status", "healthy"}, {"message", "pong"}});
    co_await res.sendJson(200, reply);
}

awaitable<void> version(Agent& agent, Request&, Responder& res, const RouteParams&) {
    json reply = wire::success({{"version", agent.config().version}});
    co_await res.sendJson(200, reply);
}

awaitable<void> commands(Agent&, Request&, Responder& res, const RouteParams&) {
    static const std::vector<std::string> kCommands = {
        "exec",          "execStream",   "readFile", "readFileStream", "writeFile", "deleteFile",
        "renameFile",    "moveFile",     "mkdir",    "listFiles",      "exists",    "createSession",
        "deleteSession", "listSessions", "ping",     "getVersion"};
    json reply = wire::success({{"availableCommands", kCommands}, {"count", kCommands.size()}});
    co_await res.sendJson(200, reply);
}

// ---- the table ------------------------------------------------------------------------------

using Handler = std::function<awaitable<void>(Agent&, Request&, Responder&, const RouteParams&)>;

struct Route {
    Handler handler;
    /// Answers only a WebSocket upgrade that came over HTTP: a plain request there, or one
    /// through the route multiplexer, is not found.
    bool webSocket = false;
};

const server::Headers kCors = {
    {"Access-Control-Allow-Origin", "*"},
    {"Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"},
    {"Access-Control-Allow-Headers",
     "Content-Type, Authorization, X-Session-Id, X-Sandbox-Id, X-Trace-Id"}};

class Api : public std::enable_shared_from_this<Api> {
  public:
    explicit Api(Agent& agent);
    /// Runs the route for `req`. `viaMux`: the request came through the route multiplexer.
    awaitable<void> dispatch(Request& req, Responder& res, bool viaMux);

  private:
    void declareRoutes();
    awaitable<void> serveMux(Responder& res);
    awaitable<void> servePty(Request& req, Responder& res);

    Agent& agent_;
    std::shared_ptr<PtyHub> pty_;
    server::Router<Route> routes_;
};

Api::Api(Agent& agent) : agent_(agent), pty_(std::make_shared<PtyHub>(agent)) {
    // A session's terminals and code contexts end with it.
    agent.onSessionDeleted = [&agent, weak = std::weak_ptr<PtyHub>(pty_)](const std::string& id) {
        if (auto hub = weak.lock()) hub->destroy(id);
        agent.interpreter().removeSession(id);
    };
    declareRoutes();
}

void Api::declareRoutes() {
    auto http = [this](std::string_view method, std::string_view pattern, Handler handler) {
        routes_.add(method, pattern, Route{std::move(handler), false});
    };
    auto webSocket = [this](std::string_view pattern, Handler handler) {
        routes_.add("GET", pattern, Route{std::move(handler), true});
    };

    // About the agent (this file).
    http("GET", "/", root);
    http("GET", "/api/ping", ping);
    http("GET", "/api/version", version);
    http("GET", "/api/commands", commands);

    // Sessions and commands (exec_routes.cpp).
    http("POST", "/api/session/create", exec_routes::sessionCreate);
    http("GET", "/api/session/list", exec_routes::sessionList);
    http("POST", "/api/session/delete", exec_routes::sessionDelete);
    http("POST", "/api/execute", exec_routes::execute);
    http("POST", "/api/execute/stream", exec_routes::executeStream);

    // Files (file_routes.cpp).
    http("POST", "/api/read", file_routes::read);
    http("POST", "/api/read/stream", file_routes::readStream);
    http("POST", "/api/write", file_routes::write);
    http("POST", "/api/delete", file_routes::remove);
    http("POST", "/api/rename", file_routes::rename);
    http("POST", "/api/move", file_routes::move);
    http("POST", "/api/mkdir", file_routes::mkdir);
    http("POST", "/api/list-files", file_routes::list);
    http("POST", "/api/exists", file_routes::exists);

    // Git and file watches (git_routes.cpp, watch_routes.cpp).
    http("POST", "/api/git/checkout", git_routes::checkout);
    http("POST", "/api/watch", watch_routes::watch);
    http("POST", "/api/watch/check", watch_routes::check);

    // Processes and ports (process_routes.cpp). A literal segment wins over {id} for the
    // methods it takes: GET /api/process/list lists, GET /api/process/kill-all looks up a
    // process called "kill-all".
    http("POST", "/api/process/start", process_routes::start);
    http("GET", "/api/process/list", process_routes::list);
    http("DELETE", "/api/process/kill-all", process_routes::killAll);
    http("GET", "/api/process/{id}", process_routes::get);
    http("DELETE", "/api/process/{id}", process_routes::kill);
    http("GET", "/api/process/{id}/logs", process_routes::logs);
    http("GET", "/api/process/{id}/stream", process_routes::stream);
    http("POST", "/api/port-watch", process_routes::portWatch);

    // The code interpreter (interpreter_routes.cpp).
    http("GET", "/api/interpreter/health", interpreter_routes::health);
    http("POST", "/api/contexts", interpreter_routes::createContext);
    http("GET", "/api/contexts", interpreter_routes::listContexts);
    http("DELETE", "/api/contexts/{id}", interpreter_routes::deleteContext);
    http("POST", "/api/execute/code", interpreter_routes::executeCode);

    // WebSockets: the route multiplexer (ws_mux.cpp) and the terminal (pty.cpp).
    auto mux = [this](Agent&, Request&, Responder& res, const RouteParams&) {
        return serveMux(res);
    };
    webSocket("/ws", mux);
    webSocket("/api/ws", mux);
    webSocket("/ws/pty", [this](Agent&, Request& req, Responder& res, const RouteParams&) {
        return servePty(req, res);
    });
}

awaitable<void> Api::dispatch(Request& req, Responder& res, bool viaMux) {
    auto match = routes_.match(req.method, req.path);
    const Route* route = match.handler;
    if (route && route->webSocket && (viaMux || !server::isWebSocketUpgrade(req))) route = nullptr;
    if (route && route->webSocket) {  // a failure before the upgrade is the server's 500
        co_await route->handler(agent_, req, res, match.params);
        co_return;
    }
    std::optional<ApiError> error;
    if (!route) {
        if (req.method == "OPTIONS") {
            co_await res.send(204, "text/plain", "", kCors);
            co_return;
        }
        error = ApiError("UNKNOWN_ERROR", "The requested endpoint was not found").withStatus(404);
    } else {
        try {
            co_await route->handler(agent_, req, res, match.params);
        } catch (const ApiError& e) {
            error = e;
        } catch (const std::system_error& e) {
            error = ApiError("INTERNAL_ERROR", e.what());
        }
    }
    if (error && !res.started()) co_await res.sendJson(error->httpStatus(), error->envelope());
}

awaitable<void> Api::serveMux(Responder& res) {
    // Each request of the socket goes through this table again (WebSocket routes excluded).
    auto inner =
        std::make_shared<server::Handler>([self = shared_from_this()](Request& q, Responder& s) {
            return self->dispatch(q, s, true);
        });
    co_await serveRouteMux(inner, res);
}

awaitable<void> Api::servePty(Request& req, Responder& res) {
    std::string sid = req.queryParam("sessionId").value_or("");
    if (sid.empty()) {
        std::string message = "sessionId query parameter required";
        co_await res.send(400, "text/plain", std::move(message));
        co_return;
    }
    auto pty = pty_;
    co_await pty->serve(req, res, sid);
}

}  // namespace
}  // namespace routes

server::Handler makeRouter(Agent& agent) {
    auto api = std::make_shared<routes::Api>(agent);
    return [api](Request& req, Responder& res) { return api->dispatch(req, res, false); };
}

}  // namespace sandbox::agent
