#pragma once
// TCP services of a test on this host's loopback interface (the only "outside" network tests
// may reach): a bare listener on an ephemeral port, and one that greets and counts.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

namespace sandbox::testing {

/// A listening socket on 127.0.0.1 with an ephemeral port (above 1024, never 3000), closed at
/// the end of its scope. Connections wait in the kernel's backlog until accepted. Another
/// address and port are for network namespaces a test made (the thread's at construction).
struct LoopbackListener {
    int fd = -1;
    int port = 0;
    explicit LoopbackListener(std::uint32_t address = INADDR_LOOPBACK, int fixedPort = 0) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(address);
        a.sin_port = htons(static_cast<std::uint16_t>(fixedPort));
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(fd, 16) == 0);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        port = ntohs(a.sin_port);
    }
    ~LoopbackListener() { ::close(fd); }
    LoopbackListener(const LoopbackListener&) = delete;
    LoopbackListener& operator=(const LoopbackListener&) = delete;
};

/// A loopback service that accepts every connection, counts it, sends `greeting` and closes.
struct GreetingService {
    LoopbackListener listener;
    std::atomic<int> accepted{0};
    std::thread thread;
    explicit GreetingService(std::string greeting, std::uint32_t address = INADDR_LOOPBACK,
                             int fixedPort = 0)
        : listener(address, fixedPort) {
        thread = std::thread([this, greeting = std::move(greeting)] {
            for (;;) {
                int c = ::accept(listener.fd, nullptr, nullptr);
                if (c < 0) return;  // shut down
                ++accepted;
                ::send(c, greeting.data(), greeting.size(), MSG_NOSIGNAL);
                ::close(c);
            }
        });
    }
    ~GreetingService() {
        ::shutdown(listener.fd, SHUT_RDWR);
        thread.join();
    }
    int port() const { return listener.port; }
};

}  // namespace sandbox::testing
