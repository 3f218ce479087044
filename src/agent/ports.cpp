#include "agent/ports.hpp"

#include <memory>
#include <string>

#include "server/http_call.hpp"

namespace sandbox::agent {

namespace {
constexpr auto kProbeTimeout = std::chrono::seconds(5);
}  // namespace

awaitable<std::optional<int>> probePort(const core::wire::PortWatchRequest& r) {
    auto ex = co_await net::this_coro::executor;
    auto call = std::make_shared<server::HttpCall>(
        ex, server::HttpPeer::loopback(static_cast<std::uint16_t>(r.port)));
    net::steady_timer deadline(ex);
    deadline.expires_after(kProbeTimeout);
    deadline.async_wait([call](boost::system::error_code ec) {
        if (!ec) call->cancel();
    });
    std::optional<int> result;
    if (r.mode == "tcp") {
        bool connected = co_await call->connect();
        if (connected) result = 0;
    } else {
        const server::Headers headers{{"host", "localhost:" + std::to_string(r.port)},
                                      {"user-agent", "sandbox-agent-port-watch"},
                                      {"accept", "*/*"}};
        const std::string noBody;
        bool answered = co_await call->start("GET", r.path, noBody, headers);
        if (answered && call->status() >= r.statusMin && call->status() <= r.statusMax)
            result = call->status();
    }
    deadline.cancel();
    call->cancel();
    co_return result;
}

}  // namespace sandbox::agent
