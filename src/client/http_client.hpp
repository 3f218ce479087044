#pragma once
// A blocking HTTP/1.1 client over TCP, TLS or a unix socket with keep-alive, timeouts and
// incremental body delivery (for SSE). Internal: the SDK's transports, the tests and the
// benchmarks use it. Boost and OpenSSL stay inside http_client.cpp.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandbox::client {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct HttpResponse {
    int status = 0;
    HeaderList headers;  ///< names lower-case
    std::string body;    ///< empty for streamed responses
    std::optional<std::string> header(std::string_view name) const;
};

/// Where to connect: "http://HOST:PORT[/base]", "https://HOST[:PORT][/base]" or "unix:/path".
struct Endpoint {
    enum class Kind { Tcp, Tls, Unix } kind = Kind::Tcp;
    std::string host;      ///< TCP/TLS host
    std::string port;      ///< TCP/TLS port
    std::string path;      ///< unix socket path
    std::string basePath;  ///< prefix for request targets ("" or "/v1/...")
    /// Parses an endpoint string; throws std::invalid_argument with the reason.
    static Endpoint parse(std::string_view spec);
    /// The same endpoint with `suffix` appended to the base path.
    Endpoint withBase(std::string_view suffix) const;
};

/// Thrown when the connection cannot be made, is lost mid-request, or times out.
class TransportError : public std::runtime_error {
  public:
    enum class Kind { Connect, Lost, Timeout };
    TransportError(Kind kind, const std::string& what, bool refused = false)
        : std::runtime_error(what), kind_(kind), refused_(refused) {}
    Kind kind() const noexcept { return kind_; }
    /// Connect: nobody listens there (the request was not sent; worth retrying while a server
    /// starts), as opposed to DNS, TLS or timeout failures.
    bool refused() const noexcept { return refused_; }

  private:
    Kind kind_;
    bool refused_;
};

/// Connection settings (0 = no timeout).
struct HttpSettings {
    std::chrono::milliseconds connectTimeout{0};
    std::chrono::milliseconds ioTimeout{0};  ///< longest wait for any single read or write
    std::string caFile;                      ///< extra trusted CA certificates (PEM) for TLS
};

/// One keep-alive connection; reconnects transparently before a request when the previous one
/// was closed. Not thread-safe (use one per thread, or a pool).
class HttpConnection {
  public:
    explicit HttpConnection(Endpoint endpoint, HttpSettings settings = {});
    ~HttpConnection();
    HttpConnection(HttpConnection&&) noexcept;
    HttpConnection& operator=(HttpConnection&&) noexcept;

    const Endpoint& endpoint() const;
    /// Sends a request and reads the whole response.
    HttpResponse request(std::string_view method, std::string_view target,
                         std::string_view body = {}, const HeaderList& headers = {});
    /// Sends a request; delivers the body incrementally to `onData` (return false to stop
    /// reading: the connection is then closed). The returned response has an empty body.
    HttpResponse stream(std::string_view method, std::string_view target, std::string_view body,
                        const HeaderList& headers,
                        const std::function<bool(std::string_view)>& onData);
    /// Pull-style streaming: sends the request and reads the response head; then readChunk()
    /// returns body pieces until it returns false (end of body).
    HttpResponse startStream(std::string_view method, std::string_view target,
                             std::string_view body, const HeaderList& headers);
    bool readChunk(std::string& out);
    /// Changes the I/O timeout for what follows (e.g. a stream's idle timeout).
    void setIoTimeout(std::chrono::milliseconds timeout);
    bool connected() const;
    void close();
    /// Shuts the socket down so that a read or write blocked in another thread returns with an
    /// error. The only member that may be called concurrently with the others.
    void interrupt();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sandbox::client
