// Sandboxes and the warm pool (docs/sandboxd.md): POST /v1/sandbox (a new id; nothing starts),
// DELETE /v1/sandbox/{id}, GET /v1/sandbox/{id}/running, /v1/pool/{stats,prime,
// shutdown-prewarmed}.
#include <nlohmann/json.hpp>

#include "core/utf8.hpp"
#include "daemon/handlers.hpp"
#include "server/http_call.hpp"

namespace sandbox::daemon::sandbox_routes {

awaitable<void> create(SandboxManager&, Request&, Responder& res, const RouteParams&) {
    std::string body = "{\"id\":";
    core::appendJsonString(body, newSandboxId());
    body += "}";
    co_await res.send(200, "application/json", std::move(body));
}

awaitable<void> destroy(SandboxManager& mgr, Request&, Responder& res, const RouteParams& params) {
    mgr.destroy(params["id"]);
    co_await res.send(204, "", "");
}

awaitable<void> running(SandboxManager& mgr, Request&, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    auto up = co_await connectAgent(mgr, sb);
    const unsigned generation = sb->generation;
    server::Headers none;
    bool ok = co_await up->start("GET", "/api/ping", std::string(), none);
    std::string body;
    if (ok) ok = co_await up->readAll(body);
    if (!ok) mgr.markBroken(id, generation);  // the next request starts it again
    co_await res.send(200, "application/json",
                      ok && up->status() == 200 ? "{\"running\":true}" : "{\"running\":false}");
}

awaitable<void> poolStats(SandboxManager& mgr, Request&, Responder& res, const RouteParams&) {
    co_await res.send(200, "application/json", mgr.poolStats().toJson());
}

awaitable<void> poolPrime(SandboxManager& mgr, Request&, Responder& res, const RouteParams&) {
    mgr.primePool();
    co_await sendOk(res);
}

awaitable<void> poolShutdownPrewarmed(SandboxManager& mgr, Request&, Responder& res,
                                      const RouteParams&) {
    mgr.shutdownPrewarmed();
    co_await sendOk(res);
}

}  // namespace sandbox::daemon::sandbox_routes
