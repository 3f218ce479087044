#include "client/http_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <stdexcept>
#include <variant>

namespace sandbox::client {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using unix_sock = net::local::stream_protocol;

std::optional<std::string> HttpResponse::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return v;
    return std::nullopt;
}

Endpoint Endpoint::parse(std::string_view spec) {
    Endpoint e;
    if (spec.rfind("unix:", 0) == 0) {
        e.kind = Kind::Unix;
        e.path = std::string(spec.substr(5));
        if (e.path.rfind("//", 0) == 0) e.path = e.path.substr(2);  // unix:///path
        if (e.path.empty()) throw std::invalid_argument("unix: endpoint needs a socket path");
        return e;
    }
    if (spec.rfind("http://", 0) != 0)
        throw std::invalid_argument("endpoint must start with http:// or unix: ('" +
                                    std::string(spec) + "')");
    std::string_view rest = spec.substr(7);
    auto slash = rest.find('/');
    std::string_view hostport = rest.substr(0, slash);
    if (slash != std::string_view::npos) e.basePath = std::string(rest.substr(slash));
    while (!e.basePath.empty() && e.basePath.back() == '/') e.basePath.pop_back();
    auto colon = hostport.rfind(':');
    if (!hostport.empty() && hostport.front() == '[') {
        auto close = hostport.find(']');
        if (close == std::string_view::npos)
            throw std::invalid_argument("bad IPv6 host in endpoint");
        e.host = std::string(hostport.substr(1, close - 1));
        e.port = close + 1 < hostport.size() && hostport[close + 1] == ':'
                     ? std::string(hostport.substr(close + 2))
                     : "80";
    } else if (colon != std::string_view::npos) {
        e.host = std::string(hostport.substr(0, colon));
        e.port = std::string(hostport.substr(colon + 1));
    } else {
        e.host = std::string(hostport);
        e.port = "80";
    }
    if (e.host.empty()) throw std::invalid_argument("endpoint has no host");
    return e;
}

struct HttpConnection::Impl {
    Endpoint ep;
    net::io_context io;
    std::variant<std::monostate, tcp::socket, unix_sock::socket> sock;
    beast::flat_buffer buffer;

    void connect() {
        beast::error_code ec;
        if (ep.kind == Endpoint::Kind::Unix) {
            unix_sock::socket s(io);
            s.connect(unix_sock::endpoint(ep.path), ec);
            if (ec) throw TransportError("cannot connect to unix:" + ep.path + ": " + ec.message());
            sock = std::move(s);
        } else {
            tcp::resolver r(io);
            auto results = r.resolve(ep.host, ep.port, ec);
            if (ec) throw TransportError("cannot resolve " + ep.host + ": " + ec.message());
            tcp::socket s(io);
            net::connect(s, results, ec);
            if (ec)
                throw TransportError("cannot connect to " + ep.host + ":" + ep.port + ": " +
                                     ec.message());
            s.set_option(tcp::no_delay(true), ec);
            sock = std::move(s);
        }
        buffer.clear();
    }

    bool connected() const { return !std::holds_alternative<std::monostate>(sock); }

    void close() {
        beast::error_code ec;
        std::visit(
            [&](auto& s) {
                if constexpr (!std::is_same_v<std::decay_t<decltype(s)>, std::monostate>)
                    s.close(ec);
            },
            sock);
        sock = std::monostate{};
    }

    template <class F>
    auto withSocket(F&& f) {
        if (auto* t = std::get_if<tcp::socket>(&sock)) return f(*t);
        return f(std::get<unix_sock::socket>(sock));
    }

    http::request<http::string_body> makeRequest(std::string_view method, std::string_view target,
                                                 std::string_view body, const HeaderList& headers) {
        http::request<http::string_body> req;
        req.method_string(method);
        req.target(ep.basePath + std::string(target));
        req.version(11);
        req.set(http::field::host,
                ep.kind == Endpoint::Kind::Unix ? std::string("localhost") : ep.host);
        req.set(http::field::user_agent, "sandbox-cpp");
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

    // Writes the request, retrying once on a fresh connection if a kept-alive one went stale.
    void send(http::request<http::string_body>& req, bool& reused) {
        reused = connected();
        if (!reused) connect();
        beast::error_code ec;
        withSocket([&](auto& s) { http::write(s, req, ec); });
        if (ec && reused) {
            close();
            connect();
            reused = false;
            withSocket([&](auto& s) { http::write(s, req, ec); });
        }
        if (ec) {
            close();
            throw TransportError("cannot send request: " + ec.message());
        }
    }
};

HttpConnection::HttpConnection(Endpoint endpoint) : impl_(std::make_unique<Impl>()) {
    impl_->ep = std::move(endpoint);
}
HttpConnection::~HttpConnection() = default;
HttpConnection::HttpConnection(HttpConnection&&) noexcept = default;
HttpConnection& HttpConnection::operator=(HttpConnection&&) noexcept = default;

void HttpConnection::close() {
    impl_->close();
}

static HeaderList collectHeaders(const http::fields& f) {
    HeaderList out;
    for (const auto& h : f) {
        std::string name(h.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.emplace_back(std::move(name), std::string(h.value()));
    }
    return out;
}

HttpResponse HttpConnection::request(std::string_view method, std::string_view target,
                                     std::string_view body, const HeaderList& headers) {
    auto req = impl_->makeRequest(method, target, body, headers);
    for (int attempt = 0;; ++attempt) {
        bool reused = false;
        impl_->send(req, reused);
        http::response_parser<http::string_body> parser;
        parser.body_limit(1ull << 31);
        beast::error_code ec;
        impl_->withSocket([&](auto& s) { http::read(s, impl_->buffer, parser, ec); });
        if (ec) {
            impl_->close();
            // A kept-alive connection the server closed before answering: try once more.
            if (reused && attempt == 0 &&
                (ec == http::error::end_of_stream || ec == net::error::connection_reset))
                continue;
            throw TransportError("connection lost while reading the response: " + ec.message());
        }
        auto& msg = parser.get();
        HttpResponse r;
        r.status = static_cast<int>(msg.result_int());
        r.headers = collectHeaders(msg.base());
        r.body = std::move(msg.body());
        if (!msg.keep_alive()) impl_->close();
        return r;
    }
}

HttpResponse HttpConnection::stream(std::string_view method, std::string_view target,
                                    std::string_view body, const HeaderList& headers,
                                    const std::function<bool(std::string_view)>& onData) {
    auto req = impl_->makeRequest(method, target, body, headers);
    bool reused = false;
    impl_->send(req, reused);
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(boost::none);
    beast::error_code ec;
    impl_->withSocket([&](auto& s) { http::read_header(s, impl_->buffer, parser, ec); });
    if (ec) {
        impl_->close();
        throw TransportError("connection lost while reading the response: " + ec.message());
    }
    HttpResponse r;
    r.status = static_cast<int>(parser.get().result_int());
    r.headers = collectHeaders(parser.get().base());
    std::string chunk(64 * 1024, '\0');
    bool stopped = false;
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        impl_->withSocket([&](auto& s) { http::read(s, impl_->buffer, parser, ec); });
        if (ec == http::error::need_buffer) ec = {};
        if (ec) {
            impl_->close();
            throw TransportError("stream lost: " + ec.message());
        }
        std::size_t n = chunk.size() - parser.get().body().size;
        if (n > 0 && !onData(std::string_view(chunk.data(), n))) {
            stopped = true;
            break;
        }
    }
    if (stopped || !parser.get().keep_alive()) impl_->close();
    return r;
}

}  // namespace sandbox::client
