// Sessions and commands: /api/session/*, /api/execute, /api/execute/stream (docs/agent.md),
// over the Agent's sessions and the command services of exec.hpp.
#include <cstdlib>

#include "agent/exec.hpp"
#include "agent/handlers.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"

namespace sandbox::agent::exec_routes {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

namespace {

// Splits session-mode stream output into lines: one event per line, each ending in "\n".
struct LineSplitter {
    std::string partial;
    template <class F>
    void feed(std::string_view data, F&& emit) {
        size_t start = 0;
        for (;;) {
            auto nl = data.find('\n', start);
            if (nl == std::string_view::npos) break;
            if (partial.empty()) {
                emit(data.substr(start, nl - start + 1));
            } else {
                partial.append(data.substr(start, nl - start + 1));
                emit(std::string_view(partial));
                partial.clear();
            }
            start = nl + 1;
        }
        partial.append(data.substr(start));
    }
    template <class F>
    void finish(F&& emit) {
        if (partial.empty()) return;
        partial.push_back('\n');
        emit(std::string_view(partial));
        partial.clear();
    }
};

}  // namespace

// ---- sessions ------------------------------------------------------------------------------

awaitable<void> sessionCreate(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded() || !body.is_object())
        body = json::object();  // as the reference: defaults
    auto r = wire::SessionCreateRequest::fromJson(body);
    auto s = agent.createSession(r);
    const char* placement = std::getenv("CLOUDFLARE_PLACEMENT_ID");
    json reply =
        wire::success({{"data", {{"id", s->id()}}},
                       {"containerPlacementId", placement ? json(placement) : json(nullptr)}});
    co_await res.sendJson(200, reply);
}

awaitable<void> sessionList(Agent& agent, Request&, Responder& res, const RouteParams&) {
    json reply = wire::success({{"data", agent.sessionIds()}});
    co_await res.sendJson(200, reply);
}

awaitable<void> sessionDelete(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::SessionDeleteRequest::fromJson(core::parseJsonObject(req.body));
    co_await agent.deleteSession(r.sessionId);
    json reply = wire::success({{"sessionId", r.sessionId}});
    co_await res.sendJson(200, reply);
}

// ---- commands ------------------------------------------------------------------------------

awaitable<void> execute(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::ExecuteRequest::fromJson(core::parseJsonObject(req.body));
    const auto context = contextSessionId(req);
    if (r.background) {
        wire::ProcessStartedResponse out = co_await executeInBackground(agent, r, context);
        co_await res.sendJson(200, out.toJson());
        co_return;
    }
    wire::ExecuteResponse out = co_await executeCommand(agent, r, context);
    co_await res.sendJson(200, out.toJson());
}

awaitable<void> executeStream(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::ExecuteRequest::fromJson(core::parseJsonObject(req.body));
    const auto context = contextSessionId(req);
    // A session command holds its session (started.sessionLock) until the stream ends.
    ExecStream started = co_await startExecStream(agent, r, context);
    std::shared_ptr<RunningCommand> run = started.run;
    std::shared_ptr<ProcessRecord> rec = started.record;
    co_await res.beginSse();
    // A client that goes away takes its command with it (nobody would see the output).
    res.onClientGone([run, grace = agent.config().killGrace] { run->kill(grace); });
    // The reference ignores timeoutMs on this route; here it stops the command as everywhere
    // else (exit code 124 and a last stderr line; docs/compatibility.md).
    if (r.timeoutMs && *r.timeoutMs > 0)
        run->setTimeout(std::chrono::milliseconds(*r.timeoutMs), agent.config().killGrace);
    res.queueEvent(wire::exec_event::start(r.command, core::isoTimestampNow()));

    LineSplitter lines[2];
    core::Utf8StreamDecoder decoders[2];
    std::string ts = core::isoTimestampNow();
    auto emit = [&](int which, std::string_view data) {
        rec->append(which, std::string(data));
        res.queueEvent(wire::exec_event::output(which == 0 ? "stdout" : "stderr", data, ts));
    };
    OutputChunk c_;
    for (;;) {
        bool more = co_await run->next(c_);
        if (!more) break;
        OutputChunk* c = &c_;
        ts = core::isoTimestampNow();
        if (c->kind == OutputChunk::Exit) {
            for (int i = 0; i < 2; ++i) {
                if (started.sessionless) {
                    if (auto rest = decoders[i].flush(); !rest.empty()) emit(i, rest);
                } else {
                    lines[i].finish([&](std::string_view l) { emit(i, core::sanitizeUtf8(l)); });
                }
            }
            std::optional<int> code = c->exitCode;
            if (run->timedOut()) {
                code = 124;
                emit(1, "Command timed out after " + std::to_string(*r.timeoutMs) + "ms\n");
            }
            rec->finish(code);
            res.queueEvent(wire::exec_event::complete(code, ts));
            break;
        }
        int i = c->kind == OutputChunk::Stdout ? 0 : 1;
        if (started.sessionless) {
            std::string text = decoders[i].decode(c->data);
            if (!text.empty()) emit(i, text);
        } else {
            lines[i].feed(c->data, [&](std::string_view l) {
                if (core::isValidUtf8(l))
                    emit(i, l);
                else
                    emit(i, core::sanitizeUtf8(l));
            });
        }
        if (res.queued() >= 32 * 1024)
            co_await res.flush();
        else if (!res.clientGone())
            co_await res.flush();
    }
    co_await res.endSse();
}

}  // namespace sandbox::agent::exec_routes
