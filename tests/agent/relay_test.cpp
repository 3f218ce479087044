// The agent's port relay (agent/relay.hpp): CONNECT to a loopback port opens a byte stream to
// it; anything but a loopback target is refused; a closed port is a 502.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>

#include "agent_test_util.hpp"
#include "support/loopback.hpp"

namespace sandbox::testing::agent {
namespace {

int connectTo(int port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

void sendAll(int fd, std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
        REQUIRE(n > 0);
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Reads until `needle` was seen or the peer closed.
std::string readUntil(int fd, std::string_view needle) {
    std::string got;
    char buf[4096];
    while (got.find(needle) == std::string::npos) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

int agentPort(AgentFixture& a) {
    auto url = a.server.url();
    return std::stoi(url.substr(url.rfind(':') + 1));
}

}  // namespace

TEST_CASE("relay: CONNECT to a loopback port streams both ways") {
    AgentFixture a;
    // An echo server of the test's own, on an ephemeral loopback port.
    LoopbackListener listener;
    const int port = listener.port;
    const int lfd = listener.fd;
    std::thread echo([lfd] {
        int c = ::accept(lfd, nullptr, nullptr);
        if (c < 0) return;
        ::send(c, "hello-from-server\n", 18, MSG_NOSIGNAL);  // a server that speaks first
        char buf[4096];
        for (ssize_t n; (n = ::recv(c, buf, sizeof buf, 0)) > 0;)
            ::send(c, buf, static_cast<std::size_t>(n), MSG_NOSIGNAL);
        ::close(c);
    });
    int fd = connectTo(agentPort(a));
    sendAll(fd, "CONNECT 127.0.0.1:" + std::to_string(port) + " HTTP/1.1\r\nHost: x\r\n\r\n");
    auto head = readUntil(fd, "hello-from-server\n");
    CHECK(head.rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(head.find("\r\n\r\nhello-from-server\n") != std::string::npos);
    std::string big(300000, 'z');
    sendAll(fd, big + "END");
    auto back = readUntil(fd, "END");
    CHECK(back == big + "END");
    ::shutdown(fd, SHUT_WR);  // the end is passed on: the server closes, so does the relay
    CHECK(readUntil(fd, "never").empty());
    ::close(fd);
    echo.join();
    // The agent still serves the container API.
    CHECK(get(a, "/api/ping").status == 200);
}

TEST_CASE("relay: only loopback targets; a closed port is a 502") {
    AgentFixture a;
    auto ask = [&](const std::string& target) {
        int fd = connectTo(agentPort(a));
        sendAll(fd, "CONNECT " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
        auto got = readUntil(fd, "}");
        ::close(fd);
        return got;
    };
    for (const char* bad : {"10.0.0.1:80", "example.com:443", "127.0.0.1:0", "127.0.0.1:70000",
                            "127.0.0.1:http", "127.0.0.2:80", "[::2]:80", "127.0.0.1"}) {
        CAPTURE(bad);
        auto r = ask(bad);
        CHECK(r.rfind("HTTP/1.1 400 ", 0) == 0);
        CHECK(r.find("INVALID_PORT") != std::string::npos);
    }
    // A port nothing listens on (listened on, then closed: free for a moment).
    int freed = LoopbackListener().port;
    auto closed = ask("127.0.0.1:" + std::to_string(freed));
    CHECK(closed.rfind("HTTP/1.1 502 ", 0) == 0);
    CHECK(closed.find("PORT_NOT_LISTENING") != std::string::npos);
}

}  // namespace sandbox::testing::agent
