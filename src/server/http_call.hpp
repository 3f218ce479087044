#pragma once
// An HTTP/1.1 request from one of the servers to another HTTP server, with the response body
// read incrementally (SSE and large files are never buffered whole): sandboxd calls a sandbox's
// agent over its unix socket; the agent probes a port on its loopback interface (port-watch).
// One connection per call (`Connection: close`). Coroutines on the caller's executor; Beast stays
// inside http_call.cpp.
#include <cstdint>
#include <memory>
#include <string>

#include "server/http_server.hpp"

namespace sandbox::server {

/// Where an HttpCall connects, and how its errors name it.
struct HttpPeer {
    std::string unixPath;            ///< a unix socket; when empty, the loopback port:
    std::uint16_t loopbackPort = 0;  ///< tried on 127.0.0.1, then on ::1
    std::string name = "the server";

    static HttpPeer unixSocket(std::string path, std::string name) {
        return {std::move(path), 0, std::move(name)};
    }
    static HttpPeer loopback(std::uint16_t port) { return {{}, port, "the server"}; }
};

class HttpCall {
  public:
    HttpCall(net::any_io_executor ex, HttpPeer peer);
    ~HttpCall();
    HttpCall(const HttpCall&) = delete;
    HttpCall& operator=(const HttpCall&) = delete;

    /// Connects (a TCP peer: each loopback address in turn). False, with error(), when nothing
    /// accepts or cancel() was called.
    net::awaitable<bool> connect();
    /// Connects unless connected, sends the request and reads the response head. Returns false
    /// (with error()) when the peer cannot be reached or breaks before answering. The `host`
    /// header is "sandbox" unless `headers` gives one.
    net::awaitable<bool> start(const std::string& method, const std::string& target,
                               const std::string& body, const Headers& headers);
    int status() const;
    /// The response's headers, names lower-case.
    const Headers& headers() const;
    /// Next piece of the body into `out`: 1 = data, 0 = the body ended cleanly, -1 = the
    /// connection broke (error() says why) or cancel() was called.
    net::awaitable<int> read(std::string& out);
    /// Reads the rest of the body; false if it broke.
    net::awaitable<bool> readAll(std::string& out);
    /// Aborts the call (closes the socket); a pending connect() or read() fails.
    void cancel();
    const std::string& error() const;
    /// True when connect() failed because nothing listens at the peer's address (a refused
    /// connection, or a unix socket path that is gone): the request never reached anyone.
    bool refused() const;

    struct Impl;  ///< the connection's state (http_call.cpp)

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace sandbox::server
