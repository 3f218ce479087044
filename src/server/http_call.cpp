#include "server/http_call.hpp"

#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace sandbox::server {
namespace beast = boost::beast;
namespace http = beast::http;
using generic = net::generic::stream_protocol;
using net::awaitable;
using net::use_awaitable;

struct HttpCall::Impl {
    Impl(net::any_io_executor ex, HttpPeer peer) : socket(ex), peer(std::move(peer)) {
        // Beast reads at most the buffer's free capacity (at least 512 bytes): reserve, or a
        // relayed stream is read 512 bytes per system call.
        buffer.reserve(64 * 1024);
    }
    generic::socket socket;  // a unix or a TCP stream
    HttpPeer peer;
    beast::flat_buffer buffer;
    std::optional<http::response_parser<http::buffer_body>> parser;
    Headers headers;
    std::string error;
    std::string chunk;
    int status = 0;
    bool connected = false, cancelled = false, refused = false;
};

HttpCall::HttpCall(net::any_io_executor ex, HttpPeer peer)
    : impl_(std::make_shared<Impl>(ex, std::move(peer))) {}

HttpCall::~HttpCall() {
    cancel();
}

int HttpCall::status() const {
    return impl_->status;
}
const Headers& HttpCall::headers() const {
    return impl_->headers;
}
const std::string& HttpCall::error() const {
    return impl_->error;
}
bool HttpCall::refused() const {
    return impl_->refused;
}

void HttpCall::cancel() {
    impl_->cancelled = true;
    beast::error_code ec;
    impl_->socket.close(ec);
}

awaitable<bool> HttpCall::connect() {
    auto impl = impl_;
    const HttpPeer& peer = impl->peer;
    beast::error_code ec;
    if (!peer.unixPath.empty()) {
        generic::endpoint ep{net::local::stream_protocol::endpoint(peer.unixPath)};
        co_await impl->socket.async_connect(ep, net::redirect_error(use_awaitable, ec));
    } else {
        const net::ip::address addresses[2] = {net::ip::address_v4::loopback(),
                                               net::ip::address_v6::loopback()};
        for (const auto& address : addresses) {
            if (impl->socket.is_open()) impl->socket.close(ec);
            generic::endpoint ep{net::ip::tcp::endpoint(address, peer.loopbackPort)};
            co_await impl->socket.async_connect(ep, net::redirect_error(use_awaitable, ec));
            if (!ec || impl->cancelled) break;
        }
    }
    if (!ec && impl->cancelled) ec = net::error::operation_aborted;
    if (ec) {
        impl->error = "cannot reach " + peer.name + ": " + ec.message();
        impl->refused = ec == net::error::connection_refused ||
                        ec == beast::errc::make_error_code(beast::errc::no_such_file_or_directory);
        co_return false;
    }
    impl->connected = true;
    co_return true;
}

awaitable<bool> HttpCall::start(const std::string& method, const std::string& target,
                                const std::string& body, const Headers& headers) {
    auto impl = impl_;
    if (!impl->connected) {
        bool ok = co_await connect();
        if (!ok) co_return false;
    }
    beast::error_code ec;
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(http::field::host, "sandbox");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.keep_alive(false);
    req.prepare_payload();
    co_await http::async_write(impl->socket, req, net::redirect_error(use_awaitable, ec));
    if (ec) {
        impl->error = "cannot send to " + impl->peer.name + ": " + ec.message();
        co_return false;
    }
    impl->parser.emplace();
    impl->parser->body_limit(boost::none);
    co_await http::async_read_header(impl->socket, impl->buffer, *impl->parser,
                                     net::redirect_error(use_awaitable, ec));
    if (ec) {
        impl->error = impl->peer.name + " closed the connection before answering: " + ec.message();
        co_return false;
    }
    impl->status = static_cast<int>(impl->parser->get().result_int());
    for (const auto& f : impl->parser->get()) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        impl->headers.emplace_back(std::move(name), std::string(f.value()));
    }
    co_return true;
}

namespace {
// Parses what is already in impl.buffer into impl.chunk after its first `filled` bytes, up to
// the chunk's size. Returns the bytes of body added. Stops at the first need for more input; a
// parse error is left for the next read to meet.
std::size_t parseBuffered(HttpCall::Impl& impl, std::size_t filled) {
    std::size_t added = 0;
    while (impl.buffer.size() > 0 && !impl.parser->is_done() &&
           filled + added < impl.chunk.size()) {
        auto& body = impl.parser->get().body();
        const std::size_t room = impl.chunk.size() - filled - added;
        body.data = impl.chunk.data() + filled + added;
        body.size = room;
        beast::error_code ec;
        const std::size_t used = impl.parser->put(impl.buffer.data(), ec);
        impl.buffer.consume(used);
        const std::size_t produced = room - body.size;
        added += produced;
        if (used == 0 && produced == 0) break;            // need_more: wait for the socket
        if (ec && ec != http::error::need_buffer) break;  // an error, met by the next read
    }
    return added;
}
}  // namespace

awaitable<int> HttpCall::read(std::string& out) {
    auto impl = impl_;
    out.clear();
    if (!impl->parser) co_return -1;
    if (impl->parser->is_done()) co_return 0;
    impl->chunk.resize(64 * 1024);
    for (;;) {
        impl->parser->get().body().data = impl->chunk.data();
        impl->parser->get().body().size = impl->chunk.size();
        beast::error_code ec;
        co_await http::async_read_some(impl->socket, impl->buffer, *impl->parser,
                                       net::redirect_error(use_awaitable, ec));
        if (ec == http::error::need_buffer) ec = {};
        std::size_t n = impl->chunk.size() - impl->parser->get().body().size;
        if (n > 0) {
            // A read parses one chunk of the agent's response (an SSE event is a chunk of its
            // own), though more are often buffered already: parse those too, without waiting,
            // so the relay sends one large piece instead of one small write per event.
            n += parseBuffered(*impl, n);
            out.assign(impl->chunk.data(), n);
            co_return 1;
        }
        if (ec) {
            impl->error = impl->cancelled ? "cancelled"
                                          : impl->peer.name + " connection broke: " + ec.message();
            co_return -1;
        }
        if (impl->parser->is_done()) co_return 0;
    }
}

awaitable<bool> HttpCall::readAll(std::string& out) {
    std::string piece;
    out.clear();
    for (;;) {
        int r = co_await read(piece);
        if (r < 0) co_return false;
        if (r == 0) co_return true;
        out += piece;
    }
}

}  // namespace sandbox::server
