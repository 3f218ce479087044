// The route multiplexer on /ws and /api/ws (docs/agent.md). It runs each request through the
// ordinary route table with a Responder that turns the response into JSON frames: a `response`
// for plain routes, one `stream` frame per SSE event then a final `response` for streaming ones.
// Requests on one socket run concurrently.
#include "agent/ws_mux.hpp"

#include <map>

#include "core/wire_ws.hpp"
#include "sandbox/sse.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using server::Request;
using server::Responder;
using server::WebSocket;

namespace {

// When this much output waits to be written to the socket, a stream waits for it to drain.
constexpr std::size_t kBacklogHighWater = 4 * 1024 * 1024;

class MuxResponder : public Responder {
  public:
    MuxResponder(std::shared_ptr<WebSocket> ws, std::string id)
        : ws_(std::move(ws)), id_(std::move(id)) {}

    awaitable<void> send(int status, std::string_view, std::string&& body,
                         const server::Headers&) override {
        started_ = true;
        if (done_) co_return;
        done_ = true;
        std::optional<nlohmann::json> parsed;
        if (!body.empty()) {
            auto j = nlohmann::json::parse(body, nullptr, false);
            if (!j.is_discarded()) parsed = std::move(j);
        }
        ws_->sendText(wire::wsResponse(id_, status, parsed));
        co_return;
    }

    awaitable<void> beginStream(int status, std::string_view contentType,
                                const server::Headers&) override {
        started_ = true;
        status_ = status;
        sse_ = contentType.find("text/event-stream") != std::string_view::npos;
        co_return;
    }

    void queueRaw(std::string_view bytes) override {
        if (!sse_) {
            body_.append(bytes);
            return;
        }
        parser_.feed(bytes, [this](SseEvent&& ev) { queueFrame(ev); });
    }
    void queueEvent(std::string_view json) override {
        if (!sse_) return;
        pending_.push_back(wire::wsStream(id_, std::nullopt, json));
    }
    void queueComment(std::string_view) override {}
    std::size_t queued() const override {
        std::size_t n = 0;
        for (const auto& p : pending_) n += p.size();
        return n;
    }

    awaitable<bool> flush() override {
        if (gone_ || done_) {
            pending_.clear();
            co_return false;
        }
        for (auto& f : pending_) ws_->sendText(std::move(f));
        pending_.clear();
        if (ws_->buffered() > kBacklogHighWater) {
            bool ok = co_await ws_->drain();
            if (!ok) markGone();
        }
        if (!ws_->isOpen()) markGone();
        co_return !gone_;
    }

    awaitable<void> endSse() override {
        if (sse_) {
            if (auto last = parser_.finish()) queueFrame(*last);
        }
        co_await flush();
        if (done_ || gone_) co_return;
        done_ = true;
        if (sse_) {
            ws_->sendText(wire::wsResponse(id_, 200, std::nullopt));
        } else {
            std::optional<nlohmann::json> parsed;
            auto j = nlohmann::json::parse(body_, nullptr, false);
            if (!body_.empty() && !j.is_discarded()) parsed = std::move(j);
            ws_->sendText(wire::wsResponse(id_, status_, parsed));
        }
    }

    bool clientGone() const override { return gone_; }
    void onClientGone(std::function<void()> cb) override {
        onGone_ = std::move(cb);
        if (gone_ && onGone_) std::exchange(onGone_, nullptr)();
    }
    void enableKeepAlive(std::chrono::milliseconds) override {}
    bool started() const override { return started_; }

    /// Client cancel: the route's cleanup runs; the final response is sent now.
    void cancel() {
        if (!done_ && ws_->isOpen()) ws_->sendText(wire::wsResponse(id_, 200, std::nullopt));
        done_ = true;
        markGone();
    }
    /// Ends the request without a response frame (an error frame follows).
    void finishSilently() {
        done_ = true;
        markGone();
    }
    void markGone() {
        if (gone_) return;
        gone_ = true;
        if (onGone_) std::exchange(onGone_, nullptr)();
    }
    bool done() const { return done_; }

  private:
    void queueFrame(const SseEvent& ev) {
        std::optional<std::string> event;
        if (!ev.event.empty()) event = ev.event;
        pending_.push_back(wire::wsStream(id_, event, ev.data));
    }

    std::shared_ptr<WebSocket> ws_;
    std::string id_;
    SseParser parser_;
    std::vector<std::string> pending_;
    std::string body_;
    std::function<void()> onGone_;
    int status_ = 200;
    bool started_ = false, sse_ = false, done_ = false, gone_ = false;
};

struct MuxState {
    std::map<std::string, std::shared_ptr<MuxResponder>> active;
};

awaitable<void> runRequest(std::shared_ptr<server::Handler> inner, std::shared_ptr<WebSocket> ws,
                           std::shared_ptr<MuxState> state, wire::WsRequest r) {
    auto res = std::make_shared<MuxResponder>(ws, r.id);
    state->active[r.id] = res;
    Request req;
    req.method = r.method;
    req.target = r.path;
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);
    req.headers.emplace_back("content-type", "application/json");
    for (auto& [k, v] : r.headers) {
        std::string name = k;
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (name == "content-type")
            req.headers.front().second = v;
        else
            req.headers.emplace_back(std::move(name), v);
    }
    if (r.body && (r.method == "POST" || r.method == "PUT"))
        req.body = r.body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);

    std::optional<std::string> failure;
    if (std::string why = server::refusedPath(req.path); !why.empty()) {
        // As the HTTP server refuses it (one rule, server::refusedPath).
        res->finishSilently();
        ws->sendText(wire::wsError(r.id, "VALIDATION_FAILED", why, 400));
    } else if (r.method != "GET" && r.method != "POST" && r.method != "PUT" &&
               r.method != "DELETE") {
        failure = "Unsupported method: " + r.method;
    } else {
        try {
            co_await (*inner)(req, *res);
        } catch (const std::exception& e) {
            failure = e.what();
        }
    }
    if (!failure && !res->started() && !res->done()) failure = "handler produced no response";
    if (failure && !res->done()) {
        res->finishSilently();
        ws->sendText(wire::wsError(r.id, "INTERNAL_ERROR", *failure, 500));
    }
    if (auto it = state->active.find(r.id); it != state->active.end() && it->second == res)
        state->active.erase(it);
}

}  // namespace

awaitable<void> serveRouteMux(std::shared_ptr<server::Handler> inner, Responder& res) {
    std::shared_ptr<WebSocket> ws = co_await res.acceptWebSocket();
    auto state = std::make_shared<MuxState>();
    auto ex = co_await net::this_coro::executor;
    for (;;) {
        WebSocket::Message msg;
        bool ok = co_await ws->read(msg);
        if (!ok) break;
        wire::WsParseError perr{};
        auto r = wire::parseWsRequest(msg.data, perr);
        if (!r) {
            if (perr == wire::WsParseError::NotJson)
                ws->sendText(
                    wire::wsError(std::nullopt, "PARSE_ERROR", "Invalid JSON message", 400));
            else
                ws->sendText(wire::wsError(std::nullopt, "INVALID_REQUEST",
                                           "Message must be a valid WSRequest", 400));
            continue;
        }
        if (r->type == "cancel") {
            if (auto it = state->active.find(r->id); it != state->active.end()) {
                auto target = it->second;
                state->active.erase(it);
                target->cancel();
            }
            continue;
        }
        net::co_spawn(ex, runRequest(inner, ws, state, std::move(*r)), net::detached);
    }
    // Socket closed: cancel every stream of this connection.
    auto active = std::move(state->active);
    for (auto& [id, r] : active) r->markGone();
}

}  // namespace sandbox::agent
