#pragma once
// A small asynchronous HTTP/1.1 server on Boost.Beast (C++20 coroutines), shared by
// sandbox-agent and sandboxd. Listens on TCP (HOST:PORT) or a unix socket (unix:PATH); keeps
// connections alive; streams Server-Sent Events with chunked encoding.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/raw_stream.hpp"

namespace sandbox::server {

namespace net = boost::asio;

using Headers = std::vector<std::pair<std::string, std::string>>;

/// A parsed request. Header names are lower-case.
struct Request {
    std::string method;
    std::string target;  ///< as received, with the query string
    std::string path;    ///< target without the query string (not percent-decoded)
    std::string query;   ///< after '?', without it
    Headers headers;
    std::string body;

    /// First header with this (lower-case) name.
    std::optional<std::string_view> header(std::string_view name) const;
    /// First query parameter with this name, percent-decoded.
    std::optional<std::string> queryParam(std::string_view name) const;
};

/// Percent-decoding of a URL component ('+' is kept as is). Returns nullopt on a bad escape.
std::optional<std::string> percentDecode(std::string_view s);

/// Whether the request asks to upgrade to a WebSocket (`Upgrade: websocket`, any case).
bool isWebSocketUpgrade(const Request& req);

/// The server side of an accepted WebSocket (RFC 6455). Sends are queued and written in order
/// by one internal writer, so any coroutine may send at any time; one coroutine reads. Pings
/// are answered and sent (idle keep-alive) internally. Lives on the server's io_context.
class WebSocket {
  public:
    struct Message {
        bool binary = false;
        std::string data;
    };
    virtual ~WebSocket() = default;
    /// The next message; false once the connection is closed or broken (closeCode() says how).
    virtual net::awaitable<bool> read(Message& out) = 0;
    /// Queues a text frame.
    virtual void sendText(std::string data) = 0;
    /// Queues a binary frame.
    virtual void sendBinary(std::string data) = 0;
    /// Queues a close frame after what is queued; later sends are dropped.
    virtual void close(int code, std::string reason) = 0;
    /// Waits until the queue is written (false when the connection broke).
    virtual net::awaitable<bool> drain() = 0;
    /// Waits until at most `bytes` are queued. False when the connection broke or `deadline`
    /// passed first (flow control: stop producing while a reader is behind).
    virtual net::awaitable<bool> waitBelow(std::size_t bytes,
                                           std::chrono::steady_clock::time_point deadline) = 0;
    /// Bytes queued and not yet written.
    virtual std::size_t buffered() const = 0;
    /// False once closing, closed or broken.
    virtual bool isOpen() const = 0;
    /// The peer's close code (1005 when none was given, 1006 when the connection broke).
    virtual int closeCode() const = 0;
};

/// How a handler answers. Exactly one of: send()/sendJson(), or beginSse() ... endSse(),
/// or acceptWebSocket().
class Responder {
  public:
    virtual ~Responder() = default;

    /// A complete response with a body; an empty `contentType` sends no Content-Type (a 204).
    virtual net::awaitable<void> send(int status, std::string_view contentType, std::string&& body,
                                      const Headers& extra = {}) = 0;
    net::awaitable<void> sendJson(int status, const nlohmann::json& body);

    /// Starts a 200 text/event-stream response (chunked, no-cache).
    net::awaitable<void> beginSse();
    /// Starts a chunked response with any status and content type; the body is then written
    /// with queueRaw()/flush() and ended with endSse() (the name is historical: any stream).
    virtual net::awaitable<void> beginStream(int status, std::string_view contentType,
                                             const Headers& extra = {}) = 0;
    /// Queues raw body bytes of a stream started with beginStream().
    virtual void queueRaw(std::string_view bytes) = 0;
    /// Queues one event `data: <json>\n\n` (json must be a single line).
    virtual void queueEvent(std::string_view json) = 0;
    /// Queues a comment line (keep-alive).
    virtual void queueComment(std::string_view text) = 0;
    /// Bytes queued and not yet written.
    virtual std::size_t queued() const = 0;
    /// Writes what is queued. Returns false when the client is gone.
    virtual net::awaitable<bool> flush() = 0;
    /// Flushes and terminates the stream.
    virtual net::awaitable<void> endSse() = 0;

    /// True once the peer closed its side or a write failed.
    virtual bool clientGone() const = 0;
    /// Registers what to do when the peer goes away during a stream (watched from beginSse()
    /// until endSse(); also called when a write fails). Used to stop work nobody reads.
    virtual void onClientGone(std::function<void()> callback) = 0;
    /// While a stream is open, writes an SSE comment (": keepalive") whenever nothing else was
    /// written for `interval`, so proxies do not cut a quiet stream.
    virtual void enableKeepAlive(std::chrono::milliseconds interval) = 0;
    /// Whether a response has been started (so an error can no longer be sent as JSON).
    virtual bool started() const = 0;
    /// Answers a WebSocket upgrade request with 101 and hands over the connection (the handler
    /// keeps it for as long as it likes; the HTTP connection ends with it). Throws
    /// std::runtime_error when this responder cannot upgrade (not an upgrade request, a
    /// response already started, or a request that did not arrive over a socket).
    virtual net::awaitable<std::shared_ptr<WebSocket>> acceptWebSocket();
};

using Handler = std::function<net::awaitable<void>(Request&, Responder&)>;

/// A complete answer given without running the handler (see ServerOptions::checkHead).
struct CannedResponse {
    int status = 0;
    std::string contentType = "application/json";
    std::string body;
    Headers headers;  ///< extra headers
};

/// A request the server refuses by itself, before or instead of running the handler: 400 (a
/// request line or header it cannot parse, a path with %00), 408 (the head or the body did not
/// arrive in time), 413 (a body over maxBodyBytes), 431 (a head over maxHeaderBytes), 503 (over
/// maxConnections).
struct Refusal {
    int status = 0;
    std::string code;     ///< the container API's code for it (core/error_codes.def or close)
    std::string message;  ///< for people
    nlohmann::json context = nlohmann::json::object();
};

/// Why a request path is refused before any routing, or "" when it is not: a percent-encoded
/// NUL (%00), which would cut the path short wherever it is decoded into a C string. The server
/// answers such requests with 400 itself; other entry points (the agent's WebSocket route
/// multiplexer) call this too, so the rule lives in one place.
std::string refusedPath(std::string_view path);

/// The largest request head (request line and headers) a server reads by default.
inline constexpr std::size_t kMaxRequestHeaderBytes = 64 * 1024;

/// Takes a connection over whole (ServerOptions::hijack): the stream, the request head as it
/// is forwarded (request line, header fields, the blank line; re-serialised from the parse),
/// and the bytes that arrived after the head (the body's start, a pipelined request). The
/// server is done with the connection once this is called.
using RawHandler = std::function<net::awaitable<void>(std::unique_ptr<RawStream> stream,
                                                      std::string head, std::string early)>;

struct ServerOptions {
    std::size_t maxBodyBytes = 128ull * 1024 * 1024;
    /// Largest request head (request line and headers); a larger one is answered 431.
    std::size_t maxHeaderBytes = kMaxRequestHeaderBytes;
    std::string serverName = "sandbox";
    /// A connection must deliver a complete request head within this time: counted from the
    /// accept for its first request, and from the first byte of each later request (the wait
    /// for that byte is idleTimeout's). Else 408 and the connection is closed. 0: no limit.
    std::chrono::milliseconds headerTimeout{30'000};
    /// While a request body is being read, the longest wait for more of it (inactivity, not a
    /// total deadline: a large upload that keeps flowing is never cut). Else 408 and close.
    /// 0: no limit.
    std::chrono::milliseconds bodyTimeout{60'000};
    /// How long a kept-alive connection may wait for the first byte of its next request; then
    /// it is closed without an answer (clients retry on a fresh connection). 0: no limit.
    /// No read timeout applies while a handler runs (streams may be quiet for minutes).
    std::chrono::milliseconds idleTimeout{75'000};
    /// Open connections (WebSockets included) at most; a connection over the cap is answered
    /// 503 at once, without a request being read, and closed. 0: no cap.
    std::size_t maxConnections = 1024;
    /// Called with each request's head (the body is empty) once it is parsed, before the body
    /// is read and before `Expect: 100-continue` is answered. A response refuses the request:
    /// it is sent as is and the handler does not run; the connection is then closed when a
    /// body was announced (it is not read), kept alive otherwise. nullopt: go on.
    std::function<std::optional<CannedResponse>(const Request& head)> checkHead;
    /// Called with each request's head before anything else (checkHead included); a non-empty
    /// handler takes the connection over as a byte stream (a proxy). Empty: go on.
    std::function<RawHandler(const Request& head)> hijack;
    /// The JSON body of a Refusal; the default is the container API's error envelope
    /// ({code, message, context, httpStatus, timestamp, ...}).
    std::function<std::string(const Refusal&)> refusalBody;
};

/// The listening server. Handlers run on the io_context given at construction.
class Server {
  public:
    Server(net::io_context& io, Handler handler, ServerOptions options = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Binds and starts accepting: "HOST:PORT" (PORT may be 0 for an ephemeral port),
    /// "unix:PATH" (an existing socket file is replaced), or "fd:N" (an inherited socket that is
    /// already listening, unix or TCP). Throws std::runtime_error.
    void listen(const std::string& spec);
    /// The bound TCP port (0 for unix sockets).
    std::uint16_t port() const;
    /// Stops accepting (open connections finish their current request).
    void stop();

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace sandbox::server
