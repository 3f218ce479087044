#pragma once
// A blocking HTTP/1.1 client over TCP or a unix socket with keep-alive and incremental body
// delivery (for SSE). Internal: the SDK's transports, the tests and the benchmarks use it.
// Boost stays inside http_client.cpp.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
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

/// Where to connect: "http://HOST:PORT[/base]" or "unix:/path/to.sock".
struct Endpoint {
    enum class Kind { Tcp, Unix } kind = Kind::Tcp;
    std::string host;      ///< TCP host
    std::string port;      ///< TCP port
    std::string path;      ///< unix socket path
    std::string basePath;  ///< prefix for request targets ("" or "/v1/...")
    /// Parses an endpoint string; throws std::invalid_argument with the reason.
    static Endpoint parse(std::string_view spec);
};

/// Thrown when the connection cannot be made or is lost mid-request.
class TransportError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// One keep-alive connection; reconnects transparently before a request when the previous
/// one was closed. Not thread-safe (use one per thread).
class HttpConnection {
  public:
    explicit HttpConnection(Endpoint endpoint);
    ~HttpConnection();
    HttpConnection(HttpConnection&&) noexcept;
    HttpConnection& operator=(HttpConnection&&) noexcept;

    /// Sends a request and reads the whole response.
    HttpResponse request(std::string_view method, std::string_view target,
                         std::string_view body = {}, const HeaderList& headers = {});
    /// Sends a request; delivers the body incrementally to `onData` (return false to stop
    /// reading: the connection is then closed). The returned response has an empty body.
    HttpResponse stream(std::string_view method, std::string_view target, std::string_view body,
                        const HeaderList& headers,
                        const std::function<bool(std::string_view)>& onData);
    void close();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sandbox::client
