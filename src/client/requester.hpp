#pragma once
// HTTP as every SDK transport uses it: a pool of keep-alive connections, the retry policy for
// requests that are safe to repeat, and the mapping of failures to the SDK's exceptions. The
// transports (container_connection.cpp, narrow_bridge.cpp) send through one Requester each
// Client owns; nothing else in the SDK talks HTTP.
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/http_client.hpp"
#include "sandbox/sse.hpp"

namespace sandbox::detail {

/// When a request is tried again: a refused connection (nothing was sent) always, a 503 answer
/// only for requests that are safe to repeat; with exponential backoff, while the next wait
/// still ends inside the budget. A budget of 0 disables retries.
struct RetryPolicy {
    std::chrono::milliseconds budget{30'000};
    std::chrono::milliseconds firstBackoff{100};
    std::chrono::milliseconds maxBackoff{3'000};
};

/// The retry loop's clock and sleep (a fake one in unit tests).
class RetryClock {
  public:
    virtual ~RetryClock() = default;
    virtual std::chrono::steady_clock::time_point now() = 0;
    virtual void sleep(std::chrono::milliseconds d) = 0;
    /// std::chrono::steady_clock and std::this_thread::sleep_for.
    static RetryClock& real();
};

/// Runs `attempt` (one request; it throws client::TransportError when the connection fails)
/// until its answer is not retried under `policy`, and returns that answer whatever its status.
/// A transport error that is not retried is rethrown as it is.
client::HttpResponse withRetry(const RetryPolicy& policy, bool idempotent, RetryClock& clock,
                               const std::function<client::HttpResponse()>& attempt);

/// Maps a transport failure to the SDK exception for `operation`: ConnectionError,
/// TimeoutError, StreamLostError (mid-stream) or SandboxGoneError.
[[noreturn]] void rethrowTransport(const client::TransportError& e, const std::string& operation,
                                   bool midStream);

/// Idle keep-alive connections, reused per endpoint. Thread-safe.
class HttpPool {
  public:
    explicit HttpPool(client::HttpSettings settings, std::size_t maxIdle = 16)
        : settings_(std::move(settings)), maxIdle_(maxIdle) {}
    /// An idle connection to `ep` (its I/O timeout reset), or a new one.
    std::unique_ptr<client::HttpConnection> acquire(const client::Endpoint& ep);
    /// Returns a connection for reuse (dropped when closed or when the pool is full).
    void release(std::unique_ptr<client::HttpConnection> c);
    const client::HttpSettings& settings() const { return settings_; }

  private:
    client::HttpSettings settings_;
    std::size_t maxIdle_;
    std::mutex m_;
    std::vector<std::unique_ptr<client::HttpConnection>> idle_;
};

/// A streamed response: its SSE events pulled one at a time, or its raw bytes. Owns its
/// connection; destroying it before the end closes the connection (the server then stops what
/// it was streaming).
class EventSource {
  public:
    EventSource(std::unique_ptr<client::HttpConnection> conn, std::string operation);
    ~EventSource();
    EventSource(const EventSource&) = delete;
    EventSource& operator=(const EventSource&) = delete;
    /// Next SSE event; nullopt when the body ended. Throws StreamLostError / TimeoutError.
    std::optional<SseEvent> next();
    /// Next raw body piece; false at the end (for bodies that are not SSE).
    bool nextRaw(std::string& out);
    /// Changes how long one wait for more of the body may take (0: no limit).
    void setIdleTimeout(std::chrono::milliseconds t);
    /// Queues an event the server did not send (next() returns it before reading on).
    void push(SseEvent ev) { queue_.push_back(std::move(ev)); }
    /// Makes a read blocked in another thread return (the stream then ends with an error).
    /// The only member that may be called concurrently with the others.
    void interrupt();
    /// The response's headers (names lower-case).
    client::HeaderList headers;

  private:
    std::unique_ptr<client::HttpConnection> conn_;
    std::string operation_;
    SseParser parser_;
    std::vector<SseEvent> queue_;
    std::size_t queuePos_ = 0;
    bool eof_ = false;
};

/// Requests with the Client's settings: authentication headers, the pool, retries, timeouts,
/// and errors thrown as SDK exceptions.
class Requester {
  public:
    struct Settings {
        client::HttpSettings http;
        RetryPolicy retry;
        client::HeaderList auth;                         ///< sent with every request
        std::chrono::milliseconds requestTimeout{0};     ///< whole non-streaming request
        std::chrono::milliseconds streamIdleTimeout{0};  ///< silence allowed inside a stream
    };
    explicit Requester(Settings s, RetryClock& clock = RetryClock::real())
        : s_(std::move(s)), pool_(s_.http), clock_(clock) {}

    /// A request; retried under the policy (503 only when `idempotent`). Returns 2xx answers;
    /// anything else is thrown as the SandboxError subclass its body names.
    /// `ioTimeout`: this request's longest wait for the server (default: the request timeout).
    client::HttpResponse call(const client::Endpoint& ep, std::string_view method,
                              const std::string& target, std::string_view body,
                              const client::HeaderList& extra, const std::string& operation,
                              bool idempotent,
                              std::optional<std::chrono::milliseconds> ioTimeout = {});
    /// The same, returning every answer (the caller decides what a status means).
    client::HttpResponse send(const client::Endpoint& ep, std::string_view method,
                              const std::string& target, std::string_view body,
                              const client::HeaderList& extra, const std::string& operation,
                              bool idempotent,
                              std::optional<std::chrono::milliseconds> ioTimeout = {});
    /// A streaming request on a connection of its own: the head is checked (errors thrown), the
    /// body is returned as an EventSource. `idle` bounds each wait for more of the body
    /// (default: the stream idle timeout; 0: none).
    std::unique_ptr<EventSource> stream(
        const client::Endpoint& ep, std::string_view method, const std::string& target,
        std::string_view body, const client::HeaderList& extra, const std::string& operation,
        std::optional<std::chrono::milliseconds> idle = std::nullopt);
    /// The authentication headers plus `extra`.
    client::HeaderList headers(const client::HeaderList& extra = {}) const;
    const Settings& settings() const { return s_; }

  private:
    Settings s_;
    HttpPool pool_;
    RetryClock& clock_;
};

}  // namespace sandbox::detail
