// File watches: POST /api/watch (an SSE stream: `watching`, then `event`s, then `stopped` or
// `error`) and POST /api/watch/check (docs/watch.md), over the Agent's WatchService.
#include "agent/handlers.hpp"
#include "agent/watch.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"

namespace sandbox::agent::watch_routes {
namespace wire = core::wire;
using core::ApiError;

namespace {
// Keep-alive comments on quiet watch streams.
constexpr std::chrono::seconds kKeepAlive{15};
}  // namespace

awaitable<void> watch(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto request = wire::WatchRequest::fromJson(core::parseJsonObject(req.body));
    // A request the service refuses is an error answer; a watch that cannot start, an error
    // event on the stream.
    WatchSpec spec = agent.watches().resolve(request);
    std::shared_ptr<WatchSubscription> sub;
    std::string failure;
    try {
        sub = agent.watches().subscribe(spec);
    } catch (const ApiError& e) {
        failure = e.message();
    }
    co_await res.beginSse();
    if (!sub) {
        res.queueEvent(wire::watch_event::error(failure));
        co_await res.endSse();
        co_return;
    }
    res.enableKeepAlive(kKeepAlive);
    res.onClientGone([sub] { sub->cancel(); });
    res.queueEvent(wire::watch_event::watching(spec.path, sub->watchId()));
    bool ok = co_await res.flush();
    while (ok) {
        WatchBatch batch = sub->take();
        for (const auto& n : batch.notices) res.queueComment(n);
        for (const auto& e : batch.events) {
            res.queueEvent(wire::watch_event::event(e.type, e.path, e.isDirectory, e.timestamp));
            if (res.queued() >= 256 * 1024) {
                ok = co_await res.flush();
                if (!ok) break;
            }
        }
        if (!ok) break;
        if (batch.dropped)
            res.queueComment(std::to_string(batch.dropped) +
                             " events were dropped: this stream fell too far behind");
        ok = co_await res.flush();
        if (!ok || sub->cancelled()) break;
        if (batch.ended) {
            if (batch.failed)
                res.queueEvent(wire::watch_event::error(batch.endText));
            else
                res.queueEvent(wire::watch_event::stopped(batch.endText));
            break;
        }
        co_await sub->wait();
        if (sub->cancelled()) break;
    }
    sub->unsubscribe();
    co_await res.endSse();
}

awaitable<void> check(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto request = wire::WatchRequest::fromJson(core::parseJsonObject(req.body));
    wire::CheckChangesResponse out = agent.watches().checkChanges(request);
    nlohmann::json body = out.toJson();
    co_await res.sendJson(200, body);
}

}  // namespace sandbox::agent::watch_routes
