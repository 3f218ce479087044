#pragma once
// SDK internals shared by sdk.cpp and embedded.cpp.
#include <sys/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/http_client.hpp"
#include "sandbox/client.hpp"
#include "sandbox/sse.hpp"

namespace sandbox::detail {

/// A private sandboxd on a unix socket in a private temp directory (the embedded default).
class EmbeddedDaemon {
  public:
    /// Finds and starts sandboxd; throws ConnectionError naming where it looked.
    static std::shared_ptr<EmbeddedDaemon> shared(const std::string& explicitPath);
    ~EmbeddedDaemon();
    const std::string& socketPath() const { return socket_; }
    pid_t pid() const { return pid_; }

  private:
    EmbeddedDaemon() = default;
    std::string dir_, socket_;
    pid_t pid_ = -1;
    int stdinFd_ = -1;
};

/// Where sandboxd is looked for, in order (for messages and tests).
std::vector<std::string> sandboxdCandidates(const std::string& explicitPath);

/// A streamed response: its SSE events pulled one at a time, or its raw bytes.
class EventSource {
  public:
    EventSource(std::unique_ptr<client::HttpConnection> conn, std::string operation);
    ~EventSource();
    /// Next SSE event; nullopt when the body ended. Throws StreamLostError / TimeoutError.
    std::optional<SseEvent> next();
    /// Next raw body piece; false at the end (for non-SSE bodies).
    bool nextRaw(std::string& out);
    /// Queues an event the server did not send (next() returns it before reading on).
    void push(SseEvent ev) { queue_.push_back(std::move(ev)); }

    client::HeaderList headers;  ///< the response's headers
    bool raw = false;            ///< the body is a file's bytes, not SSE (a bridge download)

  private:
    std::unique_ptr<client::HttpConnection> conn_;
    std::string operation_;
    SseParser parser_;
    std::vector<SseEvent> queue_;
    std::size_t queuePos_ = 0;
    bool eof_ = false;
};

}  // namespace sandbox::detail
