// The agent passthrough (docs/sandboxd.md): /v1/sandbox/{id}/agent/<container route>, any
// method, relayed to the sandbox's agent as it is: HTTP (SSE streamed as it arrives) and
// WebSocket upgrades (pty_proxy.cpp). The Authorization header stays here (the agent would read
// it as a session id).
#include "daemon/handlers.hpp"
#include "daemon/pty_proxy.hpp"
#include "server/http_call.hpp"

namespace sandbox::daemon::agent_routes {

namespace {

// HTTP: the request relayed with the headers the agent reads, the response streamed back.
awaitable<void> relay(SandboxManager& mgr, const std::string& id, const std::string& rest,
                      Request& req, Responder& res) {
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    auto up = co_await connectAgent(mgr, sb);
    const unsigned generation = sb->generation;
    server::Headers headers;
    for (const auto& [k, v] : req.headers)
        if (k == "content-type" || k == "x-session-id" || k == "x-sandbox-id" ||
            k == "x-trace-id" || k == "accept")
            headers.emplace_back(k, v);
    std::string target = "/" + rest + (req.query.empty() ? "" : "?" + req.query);
    if (!co_await up->start(req.method, target, req.body, headers)) {
        mgr.markBroken(id, generation);
        co_return co_await sendError(res, 502, "exec_transport_error",
                                     "agent failed: " + up->error());
    }
    std::string contentType = "application/octet-stream";
    for (const auto& [k, v] : up->headers())
        if (k == "content-type") contentType = v;
    bool sse = contentType.find("text/event-stream") != std::string::npos;
    server::Headers extra;
    if (sse) extra.emplace_back("Cache-Control", "no-cache");
    co_await res.beginStream(up->status(), contentType, extra);
    if (sse) res.enableKeepAlive(kKeepAlive);
    res.onClientGone([up] { up->cancel(); });
    std::string piece;
    for (;;) {
        int r = co_await up->read(piece);
        if (r < 0) {
            if (!res.clientGone()) mgr.markBroken(id, generation);
            break;
        }
        if (r == 0) break;
        res.queueRaw(piece);
        if (!co_await res.flush()) break;
    }
    up->cancel();  // release the agent connection now (as /exec does)
    res.onClientGone(nullptr);
    co_await res.endSse();
}

}  // namespace

awaitable<void> passthrough(SandboxManager& mgr, Request& req, Responder& res,
                            const RouteParams& params) {
    const std::string& id = params["id"];
    const std::string& rest = params["path"];
    if (server::isWebSocketUpgrade(req)) {
        const std::string target = "/" + rest + (req.query.empty() ? "" : "?" + req.query);
        co_await agentWebSocketProxy(mgr, id, target, req, res);
        co_return;
    }
    co_await relay(mgr, id, rest, req, res);
}

}  // namespace sandbox::daemon::agent_routes
