// POST /api/port-watch (container-api §3.4): polls a port inside the sandbox until it answers
// (TCP connect, or an HTTP GET whose status is in range), optionally failing fast when a
// process ends first. One SSE stream per watch; it ends with ready, process_exited or error.
#include <boost/asio.hpp>

#include "agent/agent.hpp"
#include "agent/processes.hpp"
#include "core/json_util.hpp"
#include "core/wire_process.hpp"

namespace sandbox::agent::process_routes {
namespace wire = core::wire;
namespace ip = net::ip;

namespace {

constexpr auto kProbeTimeout = std::chrono::seconds(5);

// Connects to the port on the loopback (IPv4, then IPv6) within the probe timeout.
awaitable<bool> connectLoopback(const std::shared_ptr<ip::tcp::socket>& sock, int port,
                                const std::shared_ptr<net::steady_timer>& deadline) {
    const ip::address addrs[2] = {ip::address_v4::loopback(), ip::address_v6::loopback()};
    for (const auto& a : addrs) {
        boost::system::error_code ec;
        if (sock->is_open()) sock->close(ec);
        ip::tcp::endpoint ep(a, static_cast<unsigned short>(port));
        co_await sock->async_connect(ep, net::redirect_error(use_awaitable, ec));
        if (!ec) co_return true;
        if (deadline->expiry() <= net::steady_timer::clock_type::now()) co_return false;
    }
    co_return false;
}

// One readiness check. Returns the HTTP status (http mode) or 0 (tcp mode) when ready.
awaitable<std::optional<int>> probe(const wire::PortWatchRequest& r) {
    auto ex = co_await net::this_coro::executor;
    auto sock = std::make_shared<ip::tcp::socket>(ex);
    auto deadline = std::make_shared<net::steady_timer>(ex);
    deadline->expires_after(kProbeTimeout);
    deadline->async_wait([sock](boost::system::error_code ec) {
        if (ec) return;
        boost::system::error_code ignored;
        sock->close(ignored);
    });
    std::optional<int> result;
    bool connected = co_await connectLoopback(sock, r.port, deadline);
    if (connected && r.mode == "tcp") {
        result = 0;
    } else if (connected) {
        std::string request = "GET " + r.path +
                              " HTTP/1.1\r\nHost: localhost:" + std::to_string(r.port) +
                              "\r\nUser-Agent: sandbox-agent-port-watch\r\nAccept: */*\r\n"
                              "Connection: close\r\n\r\n";
        boost::system::error_code ec;
        co_await net::async_write(*sock, net::buffer(request),
                                  net::redirect_error(use_awaitable, ec));
        std::string head;
        char buf[1024];
        while (!ec && head.find("\r\n") == std::string::npos && head.size() < 8192) {
            std::size_t n = co_await sock->async_read_some(net::buffer(buf),
                                                           net::redirect_error(use_awaitable, ec));
            head.append(buf, n);
        }
        // "HTTP/1.x NNN reason"
        if (head.rfind("HTTP/", 0) == 0) {
            auto sp = head.find(' ');
            if (sp != std::string::npos && head.size() >= sp + 4) {
                int status = std::atoi(head.substr(sp + 1, 3).c_str());
                if (status >= r.statusMin && status <= r.statusMax) result = status;
            }
        }
    }
    deadline->cancel();
    boost::system::error_code ignored;
    sock->close(ignored);
    co_return result;
}

}  // namespace

awaitable<void> portWatch(Agent& agent, Request& req, Responder& res) {
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
        auto ready = co_await probe(r);
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
