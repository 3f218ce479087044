#pragma once
// An HTTP/1.1 call from sandboxd to a sandbox's agent over its unix socket, with the response
// body read incrementally (SSE and large files are never buffered whole). Coroutine-based,
// on the daemon's io_context.
#include <sys/types.h>

#include <boost/asio.hpp>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace sandbox::daemon {

namespace net = boost::asio;
using net::awaitable;

using HeaderPairs = std::vector<std::pair<std::string, std::string>>;

class UpstreamCall {
  public:
    /// `socketPath`: the agent's socket, which sandboxd made itself in a directory no sandbox
    /// can reach (see SandboxManager::launch), so whatever answers there is that sandbox's agent.
    UpstreamCall(net::any_io_executor ex, std::string socketPath);
    ~UpstreamCall();

    /// Connects, sends the request and reads the response head. Returns false (with error())
    /// when the agent cannot be reached or breaks before answering.
    awaitable<bool> start(const std::string& method, const std::string& target,
                          const std::string& body, const HeaderPairs& headers);
    int status() const;
    const HeaderPairs& headers() const;
    /// Next piece of the body into `out`: 1 = data, 0 = the body ended cleanly, -1 = the
    /// connection broke (error() says why) or cancel() was called.
    awaitable<int> read(std::string& out);
    /// Reads the rest of the body; false if it broke.
    awaitable<bool> readAll(std::string& out);
    /// Aborts the call (closes the socket); a pending read() returns -1.
    void cancel();
    const std::string& error() const;

    struct Impl;  ///< the connection's state (upstream.cpp)

  private:
    std::shared_ptr<Impl> impl_;
};

}  // namespace sandbox::daemon
