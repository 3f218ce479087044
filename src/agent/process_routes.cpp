// Processes and ports: /api/process/* and /api/port-watch (docs/processes.md), over the
// process services of exec.hpp and the port probe of ports.hpp.
#include "agent/exec.hpp"
#include "agent/handlers.hpp"
#include "agent/ports.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/time.hpp"

namespace sandbox::agent::process_routes {
namespace wire = core::wire;
using nlohmann::json;

namespace {

awaitable<void> streamLogs(std::shared_ptr<ProcessRecord> rec, Responder& res) {
    co_await res.beginSse();
    auto gone = std::make_shared<bool>(false);
    res.onClientGone([gone] { *gone = true; });
    res.queueEvent(
        wire::process_event::info(rec->id, rec->command, rec->status, core::isoTimestampNow()));
    LogCursor cur;
    const char* names[2] = {"stdout", "stderr"};
    for (;;) {
        std::string ts = core::isoTimestampNow();
        const auto& log = rec->log;
        if (cur.seq < log.firstSeq()) {
            // The ring dropped output before this reader got it: say how much, per stream.
            for (int i = 0; i < 2; ++i) {
                std::uint64_t missed = log.droppedBytes(i) - cur.accounted[i];
                if (missed > 0)
                    res.queueEvent(wire::process_event::dropped(names[i], missed, rec->id, ts));
                cur.accounted[i] = log.droppedBytes(i);
            }
            cur.seq = log.firstSeq();
        }
        for (const auto& c : log.chunks()) {
            if (c.seq < cur.seq) continue;
            res.queueEvent(wire::process_event::output(names[c.stream], c.data, rec->id, ts));
            cur.seq = c.seq + 1;
        }
        // A chunk dropped later counts against this reader only if it did not get it.
        for (int i = 0; i < 2; ++i) cur.accounted[i] = log.droppedBytes(i);
        const bool ended = rec->ended;
        if (ended)
            res.queueEvent(wire::process_event::exit(rec->id, rec->exitCode, rec->status, ts));
        bool ok = co_await res.flush();
        if (!ok || ended || *gone) break;
        if (rec->log.nextSeq() > cur.seq) continue;  // more arrived while writing
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
        co_await rec->waitChange(deadline);
        if (*gone || res.clientGone()) break;
    }
    res.onClientGone(nullptr);
    co_await res.endSse();
}

}  // namespace

awaitable<void> start(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::StartProcessRequest::fromJson(core::parseJsonObject(req.body));
    wire::ProcessStartedResponse out = co_await startProcess(agent, r);
    co_await res.sendJson(200, out.toJson());
}

awaitable<void> list(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto filter = req.queryParam("status");
    json arr = json::array();
    for (const auto& rec : agent.processTable().list())
        if (!filter || rec->status == *filter) arr.push_back(rec->info().toJson(false));
    json reply = wire::success({{"processes", std::move(arr)}});
    co_await res.sendJson(200, reply);
}

awaitable<void> killAll(Agent& agent, Request&, Responder& res, const RouteParams&) {
    std::size_t killed = co_await killAllProcesses(agent);
    json reply = wire::success({{"cleanedCount", killed}});
    co_await res.sendJson(200, reply);
}

awaitable<void> get(Agent& agent, Request&, Responder& res, const RouteParams& params) {
    auto rec = findProcess(agent, params["id"]);
    json reply = wire::success({{"process", rec->info().toJson(true)}});
    co_await res.sendJson(200, reply);
}

awaitable<void> kill(Agent& agent, Request& req, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    const std::optional<std::string> signal = req.queryParam("signal");
    co_await killProcess(agent, id, signal);
    json reply = wire::success({{"processId", id}});
    co_await res.sendJson(200, reply);
}

awaitable<void> logs(Agent& agent, Request&, Responder& res, const RouteParams& params) {
    wire::ProcessLogsResponse out = processLogs(agent, params["id"]);
    co_await res.sendJson(200, out.toJson());
}

awaitable<void> stream(Agent& agent, Request&, Responder& res, const RouteParams& params) {
    auto rec = findProcess(agent, params["id"]);
    co_await streamLogs(rec, res);
}

// Polls the port until it is ready, the watched process ends, or the client hangs up: one SSE
// stream that ends with ready, process_exited or error.
awaitable<void> portWatch(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::PortWatchRequest::fromJson(core::parseJsonObject(req.body));
    co_await res.beginSse();
    auto gone = std::make_shared<bool>(false);
    res.onClientGone([gone] { *gone = true; });
    res.queueEvent(wire::port_event::watching(r.port));
    auto ex = co_await net::this_coro::executor;
    net::steady_timer timer(ex);
    const auto interval = std::chrono::milliseconds(r.intervalMs);
    for (;;) {
        bool flushed = co_await res.flush();
        if (!flushed || *gone) break;
        std::shared_ptr<ProcessRecord> rec;
        if (r.processId) {
            rec = agent.processTable().get(*r.processId);
            if (!rec) {
                res.queueEvent(wire::port_event::error(r.port, "Process not found"));
                break;
            }
            if (rec->ended) {
                res.queueEvent(wire::port_event::processExited(r.port, rec->exitCode));
                break;
            }
        }
        auto ready = co_await probePort(r);
        if (ready) {
            std::optional<int> status;
            if (r.mode != "tcp") status = *ready;
            res.queueEvent(wire::port_event::ready(r.port, status));
            break;
        }
        // Sleep one interval; a watched process that ends cuts it short.
        auto until = std::chrono::steady_clock::now() + interval;
        while (std::chrono::steady_clock::now() < until && !*gone) {
            if (rec) {
                if (rec->ended) break;
                co_await rec->waitChange(until);
            } else {
                boost::system::error_code ec;
                timer.expires_at(until);
                co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
            }
        }
    }
    res.onClientGone(nullptr);
    co_await res.endSse();
}

}  // namespace sandbox::agent::process_routes
