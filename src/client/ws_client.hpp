#pragma once
// A WebSocket client (RFC 6455) over TCP, TLS or a unix socket, for the SDK's PTY and the
// tests. Its I/O runs on a private thread; the methods here may be called from any thread.
// Internal: Boost stays inside ws_client.cpp.
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "client/http_client.hpp"

namespace sandbox::client {

/// The server answered the upgrade request with an ordinary HTTP response.
class WsHandshakeError : public std::runtime_error {
  public:
    WsHandshakeError(int status, std::string body, HeaderList headers)
        : std::runtime_error("WebSocket upgrade refused with HTTP " + std::to_string(status)),
          status_(status),
          body_(std::move(body)),
          headers_(std::move(headers)) {}
    int status() const noexcept { return status_; }
    const std::string& body() const noexcept { return body_; }
    const HeaderList& headers() const noexcept { return headers_; }

  private:
    int status_;
    std::string body_;
    HeaderList headers_;
};

struct WsMessage {
    bool binary = false;
    std::string data;
};

class WebSocketClient {
  public:
    enum class ReadResult { Message, Closed, Timeout };

    /// Connects to `ep` and upgrades `target` (the endpoint's base path is prefixed). Throws
    /// WsHandshakeError when the server does not upgrade, TransportError when it cannot be
    /// reached or the handshake breaks.
    WebSocketClient(const Endpoint& ep, const std::string& target, const HeaderList& headers,
                    const HttpSettings& settings = {});
    ~WebSocketClient();
    WebSocketClient(const WebSocketClient&) = delete;
    WebSocketClient& operator=(const WebSocketClient&) = delete;

    /// Queues a frame and waits until it is written. Throws TransportError(Lost) when the
    /// connection is closed or broken.
    void sendText(std::string data);
    void sendBinary(std::string data);
    /// The next message. Closed: the connection ended (closeCode() says how). Timeout: nothing
    /// arrived within `timeout` (the connection stays usable).
    ReadResult read(WsMessage& out,
                    std::optional<std::chrono::milliseconds> timeout = std::nullopt);
    /// Starts the closing handshake (idempotent); read() returns Closed once it completes.
    void close(int code = 1000, const std::string& reason = "");
    /// Whether the connection is still open (no close seen or sent, not broken).
    bool isOpen() const;
    /// The close code the server sent (1005 none given, 1006 the connection broke); 0 while open.
    int closeCode() const;
    std::string closeReason() const;

  private:
    /// Queues one message on the connection's thread and waits until it is written.
    void sendMessage(bool binary, std::string data);
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace sandbox::client
