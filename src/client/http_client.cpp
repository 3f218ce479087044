#include "client/http_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <mutex>
#include <variant>

namespace sandbox::client {
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using unix_sock = net::local::stream_protocol;
using TlsStream = ssl::stream<tcp::socket>;

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return v;
    return std::nullopt;
}

Endpoint Endpoint::parse(std::string_view spec) {
    Endpoint e;
    if (spec.rfind("unix:", 0) == 0) {
        e.kind = Kind::Unix;
        std::string_view rest = spec.substr(5);
        if (rest.rfind("//", 0) == 0) rest.remove_prefix(2);
        e.path = std::string(rest);
        if (e.path.empty()) throw std::invalid_argument("unix: endpoint needs a socket path");
        return e;
    }
    std::string_view rest;
    std::string defaultPort;
    if (spec.rfind("http://", 0) == 0) {
        rest = spec.substr(7);
        defaultPort = "80";
    } else if (spec.rfind("https://", 0) == 0) {
        rest = spec.substr(8);
        defaultPort = "443";
        e.kind = Kind::Tls;
    } else {
        throw std::invalid_argument("endpoint must start with http://, https:// or unix: ('" +
                                    std::string(spec) + "')");
    }
    auto slash = rest.find('/');
    std::string_view hostport = rest.substr(0, slash);
    if (slash != std::string_view::npos) e.basePath = std::string(rest.substr(slash));
    while (!e.basePath.empty() && e.basePath.back() == '/') e.basePath.pop_back();
    if (!hostport.empty() && hostport.front() == '[') {
        auto close = hostport.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("bad IPv6 host in endpoint");
        e.host = std::string(hostport.substr(1, close - 1));
        e.port = close + 2 <= hostport.size() && close + 1 < hostport.size() &&
                         hostport[close + 1] == ':'
                     ? std::string(hostport.substr(close + 2))
                     : defaultPort;
    } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
        e.host = std::string(hostport.substr(0, colon));
        e.port = std::string(hostport.substr(colon + 1));
    } else {
        e.host = std::string(hostport);
        e.port = defaultPort;
    }
    if (e.host.empty()) throw std::invalid_argument("endpoint has no host");
    return e;
}

Endpoint Endpoint::withBase(std::string_view suffix) const {
    Endpoint e = *this;
    e.basePath += std::string(suffix);
    return e;
}

namespace {

TransportError timeoutOr(TransportError::Kind kind, const beast::error_code& ec,
                         const std::string& what) {
    if (ec == net::error::would_block || ec == net::error::try_again || ec == net::error::timed_out)
        return TransportError(TransportError::Kind::Timeout, what + ": timed out");
    return TransportError(kind, what + ": " + ec.message());
}

void setIoTimeoutOn(int fd, std::chrono::milliseconds t) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(t.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// connect() with a timeout: non-blocking connect, poll, back to blocking.
template <class Socket, class EndpointT>
void connectWithTimeout(Socket& s, const EndpointT& ep, std::chrono::milliseconds timeout,
                        beast::error_code& ec) {
    s.open(ep.protocol(), ec);
    if (ec) return;
    if (timeout.count() <= 0) {
        s.connect(ep, ec);
        return;
    }
    s.non_blocking(true, ec);
    s.connect(ep, ec);
    if (ec == net::error::in_progress || ec == net::error::would_block) {
        pollfd p{s.native_handle(), POLLOUT, 0};
        int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
        if (r == 0) {
            ec = net::error::timed_out;
            return;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(s.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
        ec = err ? beast::error_code(err, beast::system_category()) : beast::error_code();
    }
    if (!ec) s.non_blocking(false, ec);
}

// Makes the I/O timeouts (SO_RCVTIMEO / SO_SNDTIMEO) effective: asio is told the socket is
// non-blocking, so a read or write that times out (EAGAIN) returns would_block instead of asio
// polling again without a limit, while the descriptor itself stays blocking, so that each call
// waits up to the timeout.
template <class Socket>
void enableIoTimeouts(Socket& s) {
    beast::error_code ec;
    s.non_blocking(true, ec);
    int flags = ::fcntl(s.native_handle(), F_GETFL);
    if (flags >= 0) ::fcntl(s.native_handle(), F_SETFL, flags & ~O_NONBLOCK);
}

// A failed connect(); `refused` when nobody listens there (safe and useful to retry).
TransportError connectError(const beast::error_code& ec, const std::string& what) {
    bool refused = ec == net::error::connection_refused ||
                   ec == boost::system::errc::no_such_file_or_directory;
    TransportError e = timeoutOr(TransportError::Kind::Connect, ec, what);
    return TransportError(e.kind(), e.what(), refused && e.kind() == TransportError::Kind::Connect);
}

}  // namespace

struct HttpConnection::Impl {
    Endpoint ep;
    HttpSettings settings;
    net::io_context io;
    std::optional<ssl::context> tls;
    std::variant<std::monostate, tcp::socket, unix_sock::socket, std::unique_ptr<TlsStream>> sock;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::buffer_body>> streamParser;
    std::string chunkBuf;

    int nativeHandle() {
        if (auto* t = std::get_if<tcp::socket>(&sock)) return t->native_handle();
        if (auto* u = std::get_if<unix_sock::socket>(&sock)) return u->native_handle();
        if (auto* s = std::get_if<std::unique_ptr<TlsStream>>(&sock))
            return (*s)->next_layer().native_handle();
        return -1;
    }

    void connect() {
        beast::error_code ec;
        std::string where;
        if (ep.kind == Endpoint::Kind::Unix) {
            where = "unix:" + ep.path;
            unix_sock::socket s(io);
            connectWithTimeout(s, unix_sock::endpoint(ep.path), settings.connectTimeout, ec);
            if (ec) throw connectError(ec, "cannot connect to " + where);
            enableIoTimeouts(s);
            sock = std::move(s);
        } else {
            where = ep.host + ":" + ep.port;
            tcp::resolver r(io);
            auto results = r.resolve(ep.host, ep.port, ec);
            if (ec)
                throw TransportError(TransportError::Kind::Connect,
                                     "cannot resolve " + ep.host + ": " + ec.message());
            tcp::socket s(io);
            for (const auto& entry : results) {
                if (s.is_open()) s.close(ec);
                connectWithTimeout(s, entry.endpoint(), settings.connectTimeout, ec);
                if (!ec) break;
            }
            if (ec) throw connectError(ec, "cannot connect to " + where);
            s.set_option(tcp::no_delay(true), ec);
            enableIoTimeouts(s);
            if (ep.kind == Endpoint::Kind::Tls) {
                if (!tls) {
                    tls.emplace(ssl::context::tls_client);
                    tls->set_default_verify_paths(ec);  // none is fine when caFile is given
                    ec = {};
                    if (!settings.caFile.empty()) tls->load_verify_file(settings.caFile, ec);
                    if (ec) {
                        tls.reset();
                        throw TransportError(
                            TransportError::Kind::Connect,
                            "cannot load the CA file " + settings.caFile + ": " + ec.message());
                    }
                    tls->set_verify_mode(ssl::verify_peer);
                }
                auto stream = std::make_unique<TlsStream>(std::move(s), *tls);
                if (!SSL_set_tlsext_host_name(stream->native_handle(), ep.host.c_str()))
                    throw TransportError(TransportError::Kind::Connect,
                                         "cannot set TLS server name");
                stream->set_verify_callback(ssl::host_name_verification(ep.host));
                if (settings.connectTimeout.count() > 0)
                    setIoTimeoutOn(stream->next_layer().native_handle(), settings.connectTimeout);
                stream->handshake(ssl::stream_base::client, ec);
                if (ec)
                    throw timeoutOr(TransportError::Kind::Connect, ec,
                                    "TLS handshake with " + where + " failed");
                sock = std::move(stream);
            } else {
                sock = std::move(s);
            }
        }
        // Also replaces the handshake's connect timeout (0: no timeout).
        setIoTimeoutOn(nativeHandle(), settings.ioTimeout);
        buffer.clear();
        std::lock_guard lock(fdMutex);
        liveFd = nativeHandle();
    }

    // The descriptor interrupt() may shut down from another thread: published under fdMutex
    // after connect, withdrawn under it before the socket is closed (so a descriptor number
    // reused elsewhere is never touched).
    std::mutex fdMutex;
    int liveFd = -1;

    void interrupt() {
        std::lock_guard lock(fdMutex);
        if (liveFd >= 0) ::shutdown(liveFd, SHUT_RDWR);
    }

    bool connected() const { return !std::holds_alternative<std::monostate>(sock); }

    void close() {
        {
            std::lock_guard lock(fdMutex);
            liveFd = -1;
        }
        beast::error_code ec;
        if (auto* t = std::get_if<tcp::socket>(&sock)) t->close(ec);
        if (auto* u = std::get_if<unix_sock::socket>(&sock)) u->close(ec);
        if (auto* s = std::get_if<std::unique_ptr<TlsStream>>(&sock)) (*s)->next_layer().close(ec);
        sock = std::monostate{};
        streamParser.reset();
    }

    template <class F>
    void withSocket(F&& f) {
        if (auto* t = std::get_if<tcp::socket>(&sock)) return f(*t);
        if (auto* u = std::get_if<unix_sock::socket>(&sock)) return f(*u);
        return f(*std::get<std::unique_ptr<TlsStream>>(sock));
    }

    http::request<http::string_body> makeRequest(std::string_view method, std::string_view target,
                                                 std::string_view body, const HeaderList& headers) {
        http::request<http::string_body> req;
        req.method_string(method);
        req.target(ep.basePath + std::string(target));
        req.version(11);
        req.set(http::field::host,
                ep.kind == Endpoint::Kind::Unix ? std::string("localhost") : ep.host);
        req.set(http::field::user_agent, "sandbox-cpp/0.1");
        bool hasType = false;
        for (const auto& [k, v] : headers) {
            req.set(k, v);
            if (beast::iequals(k, "content-type")) hasType = true;
        }
        if (!body.empty() && !hasType) req.set(http::field::content_type, "application/json");
        req.body() = std::string(body);
        req.keep_alive(true);
        req.prepare_payload();
        return req;
    }

    // An idle kept-alive connection with anything to read (the server's EOF, a TLS alert, stray
    // bytes) is not reused.
    bool idleConnectionBroken() {
        if (buffer.size() > 0) return true;
        pollfd p{nativeHandle(), POLLIN, 0};
        return ::poll(&p, 1, 0) != 0;
    }

    struct Sent {
        beast::error_code error;  ///< the write's
        std::size_t bytes = 0;    ///< of the request, written before any error
        bool reused = false;      ///< on a kept-alive connection
    };

    // Writes the request. A kept-alive connection the server closed while it was idle (say, at
    // its idle timeout) is noticed here, before a byte is sent on it, and replaced by a fresh
    // one. A failed write is returned, not thrown: the server may have answered from the head
    // alone (a 401 or 413 before the body) and closed, and that answer is still to be read.
    Sent send(http::request<http::string_body>& req) {
        streamParser.reset();
        if (connected() && idleConnectionBroken()) close();
        Sent sent;
        sent.reused = connected();
        if (!sent.reused) connect();
        withSocket([&](auto& s) { sent.bytes = http::write(s, req, sent.error); });
        if (sent.error && isTimeout(sent.error)) {
            close();
            throw timeoutOr(TransportError::Kind::Lost, sent.error, "cannot send the request");
        }
        return sent;
    }

    static bool isTimeout(const beast::error_code& ec) {
        return ec == net::error::would_block || ec == net::error::try_again ||
               ec == net::error::timed_out;
    }

    // After an exchange failed with `readError` and no byte of an answer: whether to send the
    // request again on a fresh connection. Only once, only when a kept-alive connection was
    // closed or reset by the server, and only when nothing of the request was sent or the
    // method is safe to repeat (the server may have acted on a POST before the connection
    // broke: that must not run twice).
    static bool resendable(const Sent& sent, const beast::error_code& readError,
                           std::string_view method, int attempt) {
        const bool closedByServer =
            readError == http::error::end_of_stream || readError == net::error::connection_reset ||
            readError == net::error::eof || readError == net::error::broken_pipe;
        const bool safe = method != "POST" && method != "PATCH";
        return attempt == 0 && sent.reused && closedByServer && (sent.bytes == 0 || safe);
    }
};

static HeaderList collectHeaders(const http::fields& f) {
    HeaderList out;
    for (const auto& h : f) {
        std::string name(h.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.emplace_back(std::move(name), std::string(h.value()));
    }
    return out;
}

HttpConnection::HttpConnection(Endpoint endpoint, HttpSettings settings)
    : impl_(std::make_unique<Impl>()) {
    impl_->ep = std::move(endpoint);
    impl_->settings = std::move(settings);
    // Beast reads at most the buffer's free capacity (at least 512 bytes): a buffer that never
    // grew reads a stream 512 bytes per system call.
    impl_->buffer.reserve(64 * 1024);
}
HttpConnection::~HttpConnection() = default;
HttpConnection::HttpConnection(HttpConnection&&) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&&) noexcept = default;

const Endpoint& HttpConnection::endpoint() const {
    return impl_->ep;
}
bool HttpConnection::connected() const {
    return impl_->connected();
}
void HttpConnection::close() {
    impl_->close();
}
void HttpConnection::interrupt() {
    impl_->interrupt();
}

void HttpConnection::setIoTimeout(std::chrono::milliseconds timeout) {
    impl_->settings.ioTimeout = timeout;
    if (impl_->connected()) setIoTimeoutOn(impl_->nativeHandle(), timeout);
}

HttpResponse HttpConnection::request(std::string_view method, std::string_view target,
                                     std::string_view body, const HeaderList& headers) {
    auto req = impl_->makeRequest(method, target, body, headers);
    for (int attempt = 0;; ++attempt) {
        auto sent = impl_->send(req);
        http::response_parser<http::string_body> parser;
        parser.body_limit(1ull << 31);
        if (method == "HEAD") parser.skip(true);
        beast::error_code ec;
        impl_->withSocket([&](auto& s) { http::read(s, impl_->buffer, parser, ec); });
        if (ec) {
            impl_->close();
            // A kept-alive connection the server closed before answering: try once more.
            if (!parser.got_some() && Impl::resendable(sent, ec, method, attempt)) continue;
            if (sent.error)
                throw timeoutOr(TransportError::Kind::Lost, sent.error, "cannot send the request");
            throw timeoutOr(TransportError::Kind::Lost, ec,
                            "connection lost while reading the response");
        }
        auto& msg = parser.get();
        HttpResponse r;
        r.status = static_cast<int>(msg.result_int());
        r.headers = collectHeaders(msg.base());
        r.body = std::move(msg.body());
        if (sent.error || !msg.keep_alive()) impl_->close();
        return r;
    }
}

HttpResponse HttpConnection::startStream(std::string_view method, std::string_view target,
                                         std::string_view body, const HeaderList& headers) {
    auto req = impl_->makeRequest(method, target, body, headers);
    for (int attempt = 0;; ++attempt) {
        auto sent = impl_->send(req);
        impl_->streamParser.emplace();
        impl_->streamParser->body_limit(boost::none);
        beast::error_code ec;
        impl_->withSocket(
            [&](auto& s) { http::read_header(s, impl_->buffer, *impl_->streamParser, ec); });
        if (ec) {
            const bool answered = impl_->streamParser->got_some();
            impl_->close();
            if (!answered && Impl::resendable(sent, ec, method, attempt)) continue;
            if (sent.error)
                throw timeoutOr(TransportError::Kind::Lost, sent.error, "cannot send the request");
            throw timeoutOr(TransportError::Kind::Lost, ec,
                            "connection lost while reading the response");
        }
        HttpResponse r;
        r.status = static_cast<int>(impl_->streamParser->get().result_int());
        r.headers = collectHeaders(impl_->streamParser->get().base());
        return r;
    }
}

bool HttpConnection::readChunk(std::string& out) {
    out.clear();
    auto& parser = impl_->streamParser;
    if (!parser) return false;
    if (parser->is_done()) {
        bool keep = parser->get().keep_alive();
        parser.reset();
        if (!keep) impl_->close();
        return false;
    }
    // 1 MiB, not 64 KiB: with a small body buffer a fast stream (sdk_stream_mb_s) spent a
    // quarter of the reader's time moving bytes inside Beast's buffers (perf), and the
    // stream ran about 14% slower. The buffer is made once per connection.
    impl_->chunkBuf.resize(1024 * 1024);
    for (;;) {
        parser->get().body().data = impl_->chunkBuf.data();
        parser->get().body().size = impl_->chunkBuf.size();
        beast::error_code ec;
        impl_->withSocket([&](auto& s) { http::read_some(s, impl_->buffer, *parser, ec); });
        if (ec == http::error::need_buffer) ec = {};
        std::size_t n = impl_->chunkBuf.size() - parser->get().body().size;
        if (n > 0) {
            out.assign(impl_->chunkBuf.data(), n);
            return true;
        }
        if (ec) {
            impl_->close();
            throw timeoutOr(TransportError::Kind::Lost, ec, "stream lost");
        }
        if (parser->is_done()) {
            bool keep = parser->get().keep_alive();
            parser.reset();
            if (!keep) impl_->close();
            return false;
        }
    }
}

HttpResponse HttpConnection::stream(std::string_view method, std::string_view target,
                                    std::string_view body, const HeaderList& headers,
                                    const std::function<bool(std::string_view)>& onData) {
    HttpResponse r = startStream(method, target, body, headers);
    std::string piece;
    while (readChunk(piece)) {
        if (!onData(piece)) {
            impl_->close();
            break;
        }
    }
    return r;
}

}  // namespace sandbox::client
