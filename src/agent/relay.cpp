#include "agent/relay.hpp"

#include <boost/asio.hpp>
#include <charconv>
#include <nlohmann/json.hpp>

#include "core/errors.hpp"
#include "server/raw_stream.hpp"

namespace sandbox::agent {
namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;
using tcp = net::ip::tcp;

namespace {

// "127.0.0.1:8000", "localhost:8000" or "[::1]:8000" -> 8000; 0 when it is anything else.
unsigned loopbackPort(std::string_view target) {
    auto colon = target.rfind(':');
    if (colon == std::string_view::npos) return 0;
    std::string_view host = target.substr(0, colon), port = target.substr(colon + 1);
    if (host != "127.0.0.1" && host != "localhost" && host != "[::1]") return 0;
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
        return 0;
    return value;
}

// (Views: callers pass literals and locals that outlive the call; no temporaries in co_await.)
awaitable<void> answer(server::RawStream& stream, int status, std::string_view reason,
                       std::string_view code, std::string_view message) {
    core::ApiError err{std::string(code), std::string(message)};
    err.withStatus(status);
    std::string body =
        err.envelope().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    std::string out =
        "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\nConnection: close\r\n\r\n" + body;
    boost::system::error_code ec;
    co_await stream.writeAll(net::buffer(out), ec);
    stream.close();
}

awaitable<void> relayTo(unsigned port, bool passSocket, std::unique_ptr<server::RawStream> client) {
    auto ex = co_await net::this_coro::executor;
    tcp::socket upstream(ex);
    boost::system::error_code ec;
    // IPv4 loopback first, then IPv6 (a server bound to "localhost" may have only ::1).
    for (auto addr : {net::ip::make_address("127.0.0.1"), net::ip::make_address("::1")}) {
        if (upstream.is_open()) upstream.close(ec);
        ec = {};
        co_await upstream.async_connect(tcp::endpoint(addr, static_cast<unsigned short>(port)),
                                        net::redirect_error(use_awaitable, ec));
        if (!ec) break;
    }
    if (ec) {
        const std::string message = "nothing is listening on port " + std::to_string(port) +
                                    " in the sandbox (" + ec.message() + ")";
        co_return co_await answer(*client, 502, "Bad Gateway", "PORT_NOT_LISTENING", message);
    }
    // Asked for, and over a unix socket: the connected socket itself goes to the caller
    // (sandboxd), which then copies bytes without this process in between.
    static const std::string kPassed =
        "HTTP/1.1 200 Connection Established\r\nSandbox-Relay: socket\r\n\r\n";
    if (passSocket && client->sendWithDescriptor(kPassed, upstream.native_handle())) {
        client->close();
        co_return;  // our copy of the socket closes with `upstream`
    }
    static const std::string kEstablished = "HTTP/1.1 200 Connection Established\r\n\r\n";
    co_await client->writeAll(net::buffer(kEstablished), ec);
    if (ec) co_return;
    auto up = server::makeRawStream(std::move(upstream));
    co_await server::relay(*client, *up);
}

}  // namespace

std::function<server::RawHandler(const server::Request&)> connectRelay() {
    return [](const server::Request& head) -> server::RawHandler {
        if (head.method != "CONNECT") return nullptr;
        const unsigned port = loopbackPort(head.target);
        auto mode = head.header("sandbox-relay");
        const bool passSocket = mode && *mode == "socket";
        return [port, passSocket](std::unique_ptr<server::RawStream> client, std::string,
                                  std::string early) -> awaitable<void> {
            if (port == 0)
                co_return co_await answer(
                    *client, 400, "Bad Request", "INVALID_PORT",
                    "CONNECT takes 127.0.0.1:PORT, localhost:PORT or [::1]:PORT (1-65535)");
            if (!early.empty())  // the client must wait for the 200 before sending
                co_return co_await answer(*client, 400, "Bad Request", "VALIDATION_FAILED",
                                          "bytes were sent before the relay was established");
            co_await relayTo(port, passSocket, std::move(client));
        };
    };
}

}  // namespace sandbox::agent
