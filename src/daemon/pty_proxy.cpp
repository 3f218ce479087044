#include "daemon/pty_proxy.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cmath>
#include <cstdlib>

#include "core/text.hpp"
#include "core/utf8.hpp"
#include "daemon/handlers.hpp"

namespace sandbox::daemon {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using net::use_awaitable;
using server::Request;
using server::Responder;
using server::WebSocket;
using unix_sock = net::local::stream_protocol;

namespace {

// Relayed output waiting for a slow client beyond this makes the relay wait.
constexpr std::size_t kClientHighWater = 4 * 1024 * 1024;

// JavaScript Number() of a query value: "" -> 0, "0x50" -> 80, "1e1" -> 10; NaN -> nullopt.
std::optional<double> jsNumber(std::string_view raw) {
    std::string s = core::trim(raw);
    if (s.empty()) return 0.0;
    if (s == "Infinity" || s == "+Infinity") return HUGE_VAL;
    if (s == "-Infinity") return -HUGE_VAL;
    if (s.size() > 2 && s[0] == '0' &&
        (s[1] == 'x' || s[1] == 'X' || s[1] == 'o' || s[1] == 'O' || s[1] == 'b' || s[1] == 'B')) {
        int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
        char* end = nullptr;
        unsigned long long v = std::strtoull(s.c_str() + 2, &end, base);
        if (*end != '\0') return std::nullopt;
        return static_cast<double>(v);
    }
    for (char c : s)  // strtod also takes "inf", "nan" and hex floats, which Number() does not
        if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == 'E' ||
              c == '+' || c == '-'))
            return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    if (end == s.c_str() || *end != '\0') return std::nullopt;
    return v;
}

// The value handed to the agent, which reads it with parseInt (default when not a number).
std::string dimension(std::optional<std::string> raw, double fallback, double parsed) {
    if (!raw || core::trim(*raw).empty()) return std::to_string(static_cast<int>(fallback));
    if (std::isinf(parsed)) return parsed > 0 ? "Infinity" : "-Infinity";
    return std::to_string(static_cast<long long>(std::trunc(parsed)));
}

using AgentWs = websocket::stream<unix_sock::socket>;

// Agent -> client. Ends when the agent closes or breaks; closes the client accordingly.
awaitable<void> relayDown(std::shared_ptr<AgentWs> up, std::shared_ptr<WebSocket> client) {
    for (;;) {
        beast::flat_buffer buf;
        beast::error_code ec;
        co_await up->async_read(buf, net::redirect_error(use_awaitable, ec));
        if (ec) {
            if (ec == websocket::error::closed) {
                auto r = up->reason();
                int code = r.code == websocket::close_code::none ? 1000 : r.code;
                client->close(code, std::string(r.reason.data(), r.reason.size()));
            } else if (client->isOpen()) {
                client->close(1011, "sandbox agent connection lost");
            }
            break;
        }
        std::string data = beast::buffers_to_string(buf.data());
        if (up->got_binary())
            client->sendBinary(std::move(data));
        else
            client->sendText(std::move(data));
        if (client->buffered() > kClientHighWater) {
            bool ok = co_await client->drain();
            if (!ok) break;
        }
    }
}

// Opens `target` on the sandbox's agent as a WebSocket; when the agent accepts, accepts the
// client's upgrade and relays frames both ways until either side closes. The agent's refusal
// goes back as it is; an unreachable agent is a 502 `exec_transport_error` (`failurePrefix`
// before the reason).
awaitable<void> relay(SandboxManager& mgr, const std::string& id,
                      const std::shared_ptr<Sandbox>& sb, const std::string& target,
                      const char* failurePrefix, Responder& res) {
    auto ex = co_await net::this_coro::executor;
    auto up = std::make_shared<AgentWs>(ex);
    std::string failure;
    beast::error_code ec;
    const std::string socketPath = sb->connectPath();
    unix_sock::endpoint agentEndpoint(socketPath);
    co_await up->next_layer().async_connect(agentEndpoint, net::redirect_error(use_awaitable, ec));
    if (ec) failure = "cannot reach the sandbox agent: " + ec.message();
    websocket::response_type agentRes;
    if (failure.empty()) {
        websocket::stream_base::timeout t{};
        t.handshake_timeout = std::chrono::seconds(30);
        t.idle_timeout = websocket::stream_base::none();
        t.keep_alive_pings = false;
        up->set_option(t);
        up->read_message_max(64 * 1024 * 1024);
        const std::string host = "sandbox";
        co_await up->async_handshake(agentRes, host, target,
                                     net::redirect_error(use_awaitable, ec));
        if (ec && agentRes.result_int() != 0 && agentRes.result_int() != 101) {
            // The agent answered without upgrading: its response goes back as it is.
            std::string contentType(agentRes[http::field::content_type]);
            if (contentType.empty()) contentType = "text/plain";
            int status = static_cast<int>(agentRes.result_int());
            co_return co_await res.send(status, contentType, std::move(agentRes.body()));
        }
        if (ec) failure = "WebSocket upgrade failed: " + ec.message();
    }
    if (!failure.empty()) {
        mgr.markBroken(id, sb->generation);
        const std::string message = failurePrefix + failure;
        co_return co_await sendError(res, 502, "exec_transport_error", message);
    }

    std::shared_ptr<WebSocket> client = co_await res.acceptWebSocket();
    net::co_spawn(ex, relayDown(up, client), net::detached);
    // Client -> agent; the only writer of `up`.
    for (;;) {
        WebSocket::Message msg;
        bool ok = co_await client->read(msg);
        if (!ok) break;
        up->binary(msg.binary);
        co_await up->async_write(net::buffer(msg.data), net::redirect_error(use_awaitable, ec));
        if (ec) break;
    }
    if (up->is_open()) {
        int code = client->closeCode();
        if (code == 1005 || code == 1006 || code == 0) code = 1000;
        websocket::close_reason reason(static_cast<std::uint16_t>(code));
        co_await up->async_close(reason, net::redirect_error(use_awaitable, ec));
    }
}

}  // namespace

namespace pty_routes {

awaitable<void> pty(SandboxManager& mgr, Request& req, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    if (!server::isWebSocketUpgrade(req))
        co_return co_await sendError(res, 400, "invalid_request", "WebSocket upgrade required");
    auto colsRaw = req.queryParam("cols");
    auto rowsRaw = req.queryParam("rows");
    std::optional<double> cols = colsRaw ? jsNumber(*colsRaw) : std::optional<double>(80);
    std::optional<double> rows = rowsRaw ? jsNumber(*rowsRaw) : std::optional<double>(24);
    if (!cols || !rows)
        co_return co_await sendError(res, 400, "invalid_request",
                                     "cols and rows must be valid numbers");
    // Session-Id header first, then ?session=, as the reference.
    std::string session;
    {
        std::string joined;
        int count = 0;
        for (const auto& [k, v] : req.headers)
            if (k == "session-id") joined = count++ ? joined + ", " + v : v;
        session = core::trim(joined);
    }
    if (session.empty()) session = req.queryParam("session").value_or("");
    if (!session.empty() && !validSessionId(session))
        co_return co_await sendError(res, 400, "invalid_request", "Invalid session ID format");
    if (session.empty()) session = "sandbox-" + id;  // the bridge's default session

    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;

    std::string target = "/ws/pty?sessionId=" + core::queryEscape(session) +
                         "&cols=" + dimension(colsRaw, 80, *cols) +
                         "&rows=" + dimension(rowsRaw, 24, *rows);
    if (auto shell = req.queryParam("shell"); shell && !shell->empty())
        target += "&shell=" + core::queryEscape(*shell);

    co_await relay(mgr, id, sb, target, "terminal failed: ", res);
}

}  // namespace pty_routes

awaitable<void> agentWebSocketProxy(SandboxManager& mgr, const std::string& id,
                                    const std::string& target, Request& req, Responder& res) {
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    (void)req;
    co_await relay(mgr, id, sb, target, "agent failed: ", res);
}

}  // namespace sandbox::daemon
