// A sandbox's network (docs/network.md), sandboxd's own routes:
//   PUT /v1/sandbox/{id}/network  {"mode": "none" | "outbound", "allow": [RULE, ...]}; named
//                                 hosts resolved and pinned (422 when one cannot be used)
//   GET /v1/sandbox/{id}/network  the policy in force for the id (its own, or the default)
// A running sandbox given another policy is restarted under it (its workspace kept).
#include <nlohmann/json.hpp>

#include "core/json_util.hpp"
#include "core/wire_network.hpp"
#include "daemon/handlers.hpp"
#include "daemon/network.hpp"

namespace sandbox::daemon::network_routes {
using nlohmann::json;

awaitable<void> put(SandboxManager& mgr, Request& req, Responder& res, const RouteParams& params) {
    json body = core::parseJson(req.body);
    std::string why;
    auto policy = core::wire::parseNetworkPolicy(body, why);
    if (!policy) co_return co_await sendError(res, 400, "VALIDATION_FAILED", why);
    if (policy->outbound) {
        why = mgr.outboundUnavailable();
        if (!why.empty()) co_return co_await sendError(res, 501, "OUTBOUND_UNAVAILABLE", why);
    }
    // Names are resolved here, by sandboxd, and pinned with the policy.
    std::optional<NameProblem> problem = co_await resolveNames(*policy);
    if (problem) co_return co_await sendError(res, 422, problem->code, problem->message);
    why = mgr.setNetwork(params["id"], *policy);
    if (!why.empty()) co_return co_await sendError(res, 501, "OUTBOUND_UNAVAILABLE", why);
    json reply = core::wire::toJson(*policy);
    co_await res.sendJson(200, reply);
}

awaitable<void> get(SandboxManager& mgr, Request&, Responder& res, const RouteParams& params) {
    json reply = core::wire::toJson(mgr.networkOf(params["id"]));
    co_await res.sendJson(200, reply);
}

}  // namespace sandbox::daemon::network_routes
