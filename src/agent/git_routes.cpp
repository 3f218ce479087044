// Git: POST /api/git/checkout (docs/git.md), over git.hpp.
#include "agent/git.hpp"
#include "agent/handlers.hpp"
#include "core/json_util.hpp"

namespace sandbox::agent::git_routes {
namespace wire = core::wire;

awaitable<void> checkout(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto request = wire::GitCheckoutRequest::fromJson(core::parseJsonObject(req.body));
    auto ctxSession = contextSessionId(req);
    auto resp = co_await gitCheckout(agent, request, ctxSession);
    nlohmann::json body = resp.toJson();
    co_await res.sendJson(200, body);
}

}  // namespace sandbox::agent::git_routes
