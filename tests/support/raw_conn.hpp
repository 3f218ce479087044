#pragma once
// A raw TCP connection to a server on 127.0.0.1, for what an HTTP client library will not do:
// half-open connections, half a request head, malformed bytes, bodies that stop, requests
// abandoned as soon as they are sent. Every wait is bounded.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace sandbox::testing {

class RawConn {
  public:
    /// Connects (ok() says whether it worked).
    explicit RawConn(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~RawConn() { close(); }
    RawConn(RawConn&& o) noexcept : fd_(std::exchange(o.fd_, -1)), rest_(std::move(o.rest_)) {}
    RawConn& operator=(RawConn&& o) noexcept {
        close();
        fd_ = std::exchange(o.fd_, -1);
        rest_ = std::move(o.rest_);
        return *this;
    }

    bool ok() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void close() {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    }

    /// Sends all of `data`; false when the connection broke first.
    bool send(std::string_view data) {
        std::size_t off = 0;
        while (fd_ >= 0 && off < data.size()) {
            ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return false;
            off += static_cast<std::size_t>(n);
        }
        return fd_ >= 0;
    }

    /// Everything the server sends until it closes the connection (EOF or reset); nullopt
    /// when the connection is still open after `limit`.
    std::optional<std::string> readToClose(std::chrono::milliseconds limit) {
        std::string out = std::exchange(rest_, {});
        const auto deadline = std::chrono::steady_clock::now() + limit;
        char buf[16384];
        for (;;) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            int r = ::poll(&p, 1, static_cast<int>(left.count()));
            if (r == 0) return std::nullopt;
            if (r < 0) return out;
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return out;
            out.append(buf, static_cast<std::size_t>(n));
        }
    }

    /// One response: its head and, with a Content-Length, its body. "" when none arrived
    /// whole within `limit` (or the connection closed first).
    std::string readResponse(std::chrono::milliseconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        std::string& in = rest_;
        char buf[16384];
        for (;;) {
            auto end = in.find("\r\n\r\n");
            if (end != std::string::npos) {
                std::size_t length = 0;
                std::string lower = in.substr(0, end);
                for (auto& c : lower) c = static_cast<char>(std::tolower(c));
                if (auto cl = lower.find("\r\ncontent-length:"); cl != std::string::npos)
                    length = std::strtoull(lower.c_str() + cl + 17, nullptr, 10);
                if (in.size() >= end + 4 + length) {
                    std::string one = in.substr(0, end + 4 + length);
                    in.erase(0, one.size());
                    return one;
                }
            }
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return {};
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return {};
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return {};
            in.append(buf, static_cast<std::size_t>(n));
        }
    }

  private:
    int fd_ = -1;
    std::string rest_;  // bytes read past the last response
};

/// The status code of a raw HTTP/1.x response (0 when there is none).
inline int rawResponseStatus(std::string_view resp) {
    if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12) return 0;
    return std::atoi(std::string(resp.substr(9, 3)).c_str());
}

/// A header of a raw response (name lower-case), "" when absent.
inline std::string rawResponseHeader(std::string_view resp, std::string_view name) {
    std::string head(resp.substr(0, resp.find("\r\n\r\n")));
    std::string lower = head;
    for (auto& c : lower) c = static_cast<char>(std::tolower(c));
    auto at = lower.find("\r\n" + std::string(name) + ":");
    if (at == std::string::npos) return {};
    auto start = at + 3 + name.size();
    auto end = head.find("\r\n", start);
    std::string v = head.substr(start, end - start);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
    return v;
}

/// The body of a raw response (what follows the head).
inline std::string rawResponseBody(std::string_view resp) {
    auto p = resp.find("\r\n\r\n");
    return p == std::string_view::npos ? std::string() : std::string(resp.substr(p + 4));
}

}  // namespace sandbox::testing
