// Commands: POST /v1/sandbox/{id}/exec (docs/sandboxd.md): `argv` run through the sandbox's
// agent (/api/execute/stream, sessionless unless a Session-Id names a session), relayed as the
// bridge's SSE: base64 `stdout`/`stderr` chunks, then exactly one `exit` or `error`.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include "core/sse_writer.hpp"

#include "core/base64.hpp"
#include "core/shell.hpp"
#include "core/wire_bridge.hpp"
#include "daemon/handlers.hpp"
#include "daemon/workspace_fs.hpp"
#include "sandbox/sse.hpp"
#include "server/http_call.hpp"

namespace sandbox::daemon::exec_routes {
using nlohmann::json;

namespace {

// A number as JavaScript prints it in the usual cases: integers without a fraction, others in
// their shortest round-trip form (1.5 -> "1.5").
std::string jsNumber(double v) {
    char buf[64];
    if (v == 0) return "0";
    if (std::nearbyint(v) == v && std::fabs(v) < 1e21) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
        return buf;
    }
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

}  // namespace

awaitable<void> exec(SandboxManager& mgr, Request& req, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    json body = json::parse(req.body, nullptr, false);
    if (body.is_discarded())
        co_return co_await sendError(res, 400, "invalid_request", "Invalid JSON body");
    // Valid JSON that is not an object (an array, a string, null) has no argv (the reference
    // reads the field of whatever JSON it got).
    auto argvIt = body.find("argv");
    std::vector<std::string> argv;
    bool argvOk = argvIt != body.end() && argvIt->is_array() && !argvIt->empty();
    if (argvOk)
        for (const auto& a : *argvIt) {
            if (!a.is_string()) {
                argvOk = false;
                break;
            }
            argv.push_back(a.get<std::string>());
        }
    if (!argvOk)
        co_return co_await sendError(res, 400, "invalid_request", "argv must be a non-empty array");
    bool badSession = false;
    auto sid = sessionHeader(req, badSession);
    if (badSession)
        co_return co_await sendError(res, 400, "invalid_request", "Invalid session ID format");
    std::optional<double> timeoutMs;
    if (auto t = body.find("timeout_ms"); t != body.end() && t->is_number())
        timeoutMs = t->get<double>();
    std::optional<std::string> cwd;
    if (auto c = body.find("cwd"); c != body.end() && c->is_string()) {
        cwd = resolveWorkspacePath(c->get<std::string>());
        if (cwd->empty())
            co_return co_await sendError(res, 403, "invalid_request",
                                         "cwd must resolve to a location within /workspace");
    }

    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;

    std::string command = core::bridgeCommand(argv);
    json agentReq = {{"command", command}, {"sessionId", sid.value_or("__DISABLE_SESSION__")}};
    if (cwd) agentReq["cwd"] = *cwd;

    co_await res.beginSse();
    res.enableKeepAlive(kKeepAlive);
    auto emit = [&](std::string_view event, std::string_view data) {
        std::string frame;
        core::formatSseEvent(frame, data, event);
        res.queueRaw(frame);
    };

    auto up = co_await connectAgent(mgr, sb);
    const unsigned generation = sb->generation;
    res.onClientGone([up] { up->cancel(); });  // the agent kills the command when we hang up
    bool timedOut = false;
    net::steady_timer timer(co_await net::this_coro::executor);
    if (timeoutMs) {
        // Fractions count; absurdly large values are capped (no overflow into a negative delay).
        std::chrono::duration<double, std::milli> delay(std::clamp(*timeoutMs, 0.0, 1e15));
        timer.expires_after(std::chrono::duration_cast<std::chrono::nanoseconds>(delay));
        timer.async_wait([up, &timedOut](boost::system::error_code ec) {
            if (ec) return;
            timedOut = true;
            up->cancel();
        });
    }
    std::string agentBody = agentReq.dump();
    server::Headers jsonHeaders{{"content-type", "application/json"}};
    // A client already gone (its hang-up noticed while the stream began) starts nothing.
    bool started = false;
    if (!res.clientGone())
        started = co_await up->start("POST", "/api/execute/stream", agentBody, jsonHeaders);
    bool terminal = false;
    if (!started) {
        // Our own cancellation (the client hung up, or timeout_ms passed) is no failure of the
        // agent: only a real one marks the sandbox broken (which restarts it, losing its /tmp
        // and processes).
        if (!timedOut && !res.clientGone()) mgr.markBroken(id, generation);
    } else if (up->status() != 200) {
        std::string errText;
        co_await up->readAll(errText);
        json ej = json::parse(errText, nullptr, false);
        std::string msg = ej.is_object() && ej.contains("message") && ej["message"].is_string()
                              ? ej["message"].get<std::string>()
                              : "HTTP " + std::to_string(up->status());
        emit("error", errorBody(msg, "exec_error"));
        terminal = true;
    } else {
        SseParser parser;
        std::string piece;
        for (;;) {
            int r = co_await up->read(piece);
            if (r <= 0) break;
            parser.feed(piece, [&](SseEvent&& ev) {
                if (terminal) return;
                json e = json::parse(ev.data, nullptr, false);
                if (!e.is_object()) return;
                std::string type = e.value("type", "");
                if (type == "stdout" || type == "stderr") {
                    const auto& d = e["data"];
                    if (d.is_string() && !d.get_ref<const std::string&>().empty())
                        emit(type, core::base64Encode(d.get_ref<const std::string&>()));
                } else if (type == "complete") {
                    if (e.contains("exitCode") && e["exitCode"].is_number_integer())
                        emit("exit",
                             "{\"exit_code\":" + std::to_string(e["exitCode"].get<int>()) + "}");
                    else
                        emit("error",
                             errorBody("the command ended without an exit status", "exec_error"));
                    terminal = true;
                } else if (type == "error") {
                    emit("error", errorBody(e.value("error", "exec failed"), "exec_error"));
                    terminal = true;
                }
            });
            if (!co_await res.flush() || terminal) break;
        }
        if (!terminal && !timedOut && !res.clientGone()) mgr.markBroken(id, generation);
    }
    timer.cancel();
    if (!terminal && timedOut) {
        emit("stderr",
             core::base64Encode("Command timed out after " + jsNumber(*timeoutMs) + "ms\n"));
        emit("exit", "{\"exit_code\":124}");
        terminal = true;
    }
    if (!terminal)
        emit("error", errorBody("exec failed: " + (up->error().empty() ? std::string("stream ended")
                                                                       : up->error()),
                                "exec_transport_error"));
    // Done with the agent: close now, not when the connection object goes (the keep-alive
    // timer may hold it, and with it this callback and the agent socket, for seconds).
    up->cancel();
    res.onClientGone(nullptr);
    co_await res.endSse();
}

}  // namespace sandbox::daemon::exec_routes
