#include "client/ws_client.hpp"

#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace sandbox::client {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using unix_sock = net::local::stream_protocol;

namespace {

constexpr std::size_t kInboxLimit = 16 * 1024 * 1024;

// The connection, whatever its lower layers; all of it runs on the io thread.
struct Conn {
    virtual ~Conn() = default;
    virtual void asyncRead(beast::flat_buffer& buf,
                           std::function<void(beast::error_code, bool binary)> done) = 0;
    virtual void asyncWrite(bool binary, const std::string& data,
                            std::function<void(beast::error_code)> done) = 0;
    virtual void asyncClose(int code, const std::string& reason,
                            std::function<void(beast::error_code)> done) = 0;
    virtual websocket::close_reason reason() const = 0;
    virtual void abort() = 0;
};

template <class Stream>
struct ConnT : Conn {
    template <class... Args>
    explicit ConnT(Args&&... args) : ws(std::forward<Args>(args)...) {}
    websocket::stream<Stream> ws;
    void asyncRead(beast::flat_buffer& buf,
                   std::function<void(beast::error_code, bool)> done) override {
        ws.async_read(buf, [this, done = std::move(done)](beast::error_code ec, std::size_t) {
            done(ec, ws.got_binary());
        });
    }
    void asyncWrite(bool binary, const std::string& data,
                    std::function<void(beast::error_code)> done) override {
        ws.binary(binary);
        ws.async_write(net::buffer(data),
                       [done = std::move(done)](beast::error_code ec, std::size_t) { done(ec); });
    }
    void asyncClose(int code, const std::string& reason,
                    std::function<void(beast::error_code)> done) override {
        websocket::close_reason cr(static_cast<websocket::close_code>(code),
                                   beast::string_view(reason.data(), reason.size()));
        ws.async_close(cr, std::move(done));
    }
    websocket::close_reason reason() const override { return ws.reason(); }
    void abort() override {
        beast::error_code ec;
        auto& lowest = beast::get_lowest_layer(ws);
        if constexpr (requires { lowest.socket(); })
            lowest.socket().close(ec);
        else
            lowest.close(ec);
    }
};

void setupStream(auto& ws, const HeaderList& headers) {
    websocket::stream_base::timeout t{};
    t.handshake_timeout = std::chrono::seconds(30);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    ws.set_option(t);
    ws.set_option(websocket::stream_base::decorator([headers](websocket::request_type& r) {
        r.set(http::field::user_agent, "sandbox-cpp");
        for (const auto& [k, v] : headers) r.set(k, v);
    }));
    ws.read_message_max(64 * 1024 * 1024);
}

}  // namespace

struct WebSocketClient::Impl : std::enable_shared_from_this<Impl> {
    net::io_context io;
    std::optional<ssl::context> tls;
    std::unique_ptr<Conn> conn;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    std::thread thread;

    // Shared with the caller threads.
    mutable std::mutex m;
    std::condition_variable cv;
    std::deque<WsMessage> inbox;
    std::size_t inboxBytes = 0;
    bool readPaused = false;  // the inbox is full: reading resumes when the caller catches up
    bool closed = false;      // the read side ended
    bool closing = false;
    int code = 0;
    std::string reasonText;

    // io thread only.
    beast::flat_buffer readBuf;
    std::deque<std::pair<std::pair<bool, std::string>, std::promise<bool>>> outbox;
    bool writing = false, broken = false, closeSent = false;
    std::optional<std::pair<int, std::string>> closeWanted;

    void finishRead(int c, std::string why) {
        std::lock_guard lock(m);
        if (closed) return;
        closed = true;
        code = c;
        reasonText = std::move(why);
        cv.notify_all();
    }

    void readLoop() {
        readBuf.clear();
        conn->asyncRead(readBuf, [self = shared_from_this()](beast::error_code ec, bool binary) {
            if (ec) {
                if (ec == websocket::error::closed) {
                    auto r = self->conn->reason();
                    self->finishRead(r.code == websocket::close_code::none ? 1005 : r.code,
                                     std::string(r.reason.data(), r.reason.size()));
                } else {
                    self->broken = true;
                    self->finishRead(1006, ec.message());
                }
                self->failOutbox();
                return;
            }
            bool pause;
            {
                std::lock_guard lock(self->m);
                self->inbox.push_back(
                    WsMessage{binary, beast::buffers_to_string(self->readBuf.data())});
                self->inboxBytes += self->inbox.back().data.size();
                // Unread messages are bounded: past the limit the socket is not read (the
                // server sees backpressure) until read() has taken some.
                pause = self->readPaused = self->inboxBytes > kInboxLimit;
            }
            self->cv.notify_all();
            if (!pause) self->readLoop();
        });
    }

    // Fails the queued sends; the one being written (if any) is completed by its handler.
    void failOutbox() {
        std::size_t keep = writing ? 1 : 0;
        while (outbox.size() > keep) {
            outbox.back().second.set_value(false);
            outbox.pop_back();
        }
    }

    void pump() {
        if (writing) return;
        if (broken) {
            failOutbox();
            return;
        }
        if (!outbox.empty()) {
            writing = true;
            auto& front = outbox.front();
            conn->asyncWrite(front.first.first, front.first.second,
                             [self = shared_from_this()](beast::error_code ec) {
                                 self->writing = false;
                                 auto item = std::move(self->outbox.front());
                                 self->outbox.pop_front();
                                 if (ec) self->broken = true;
                                 item.second.set_value(!ec);
                                 self->pump();
                             });
            return;
        }
        if (closeWanted && !closeSent) {
            closeSent = true;
            writing = true;
            conn->asyncClose(
                closeWanted->first, closeWanted->second,
                [self = shared_from_this()](beast::error_code) { self->writing = false; });
        }
    }
};

WebSocketClient::WebSocketClient(const Endpoint& ep, const std::string& target,
                                 const HeaderList& headers, const HttpSettings& settings)
    : impl_(std::make_shared<Impl>()) {
    auto& impl = *impl_;
    std::string fullTarget = ep.basePath + target;
    websocket::response_type res;
    beast::error_code ec;
    std::string host = ep.kind == Endpoint::Kind::Unix ? "localhost" : ep.host;
    auto connectTimeout = settings.connectTimeout.count() > 0 ? settings.connectTimeout
                                                              : std::chrono::milliseconds(30000);
    auto handshakeError = [&](beast::error_code e) {
        if (e == websocket::error::upgrade_declined || res.result_int() != 0) {
            if (res.result_int() != 101) {
                HeaderList hs;
                for (const auto& f : res) {
                    std::string name(f.name_string());
                    for (auto& c : name)
                        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
                    hs.emplace_back(std::move(name), std::string(f.value()));
                }
                throw WsHandshakeError(static_cast<int>(res.result_int()), res.body(),
                                       std::move(hs));
            }
        }
        throw TransportError(TransportError::Kind::Lost,
                             "WebSocket handshake with " + fullTarget + " failed: " + e.message());
    };

    if (ep.kind == Endpoint::Kind::Unix) {
        auto c = std::make_unique<ConnT<unix_sock::socket>>(impl.io);
        c->ws.next_layer().connect(unix_sock::endpoint(ep.path), ec);
        if (ec)
            throw TransportError(TransportError::Kind::Connect,
                                 "cannot connect to unix:" + ep.path + ": " + ec.message(),
                                 ec == net::error::connection_refused ||
                                     ec == boost::system::errc::no_such_file_or_directory);
        setupStream(c->ws, headers);
        c->ws.handshake(res, host, fullTarget, ec);
        if (ec) handshakeError(ec);
        impl.conn = std::move(c);
    } else {
        tcp::resolver resolver(impl.io);
        auto results = resolver.resolve(ep.host, ep.port, ec);
        if (ec)
            throw TransportError(TransportError::Kind::Connect,
                                 "cannot resolve " + ep.host + ": " + ec.message());
        auto connectTcp = [&](beast::tcp_stream& s) {
            s.expires_after(connectTimeout);
            std::promise<beast::error_code> p;
            auto f = p.get_future();
            s.async_connect(results,
                            [&p](beast::error_code e, const tcp::endpoint&) { p.set_value(e); });
            impl.io.restart();
            impl.io.run();
            beast::error_code e = f.get();
            if (e)
                throw TransportError(
                    TransportError::Kind::Connect,
                    "cannot connect to " + ep.host + ":" + ep.port + ": " + e.message(),
                    e == net::error::connection_refused);
            s.expires_never();
            s.socket().set_option(tcp::no_delay(true));
        };
        if (ep.kind == Endpoint::Kind::Tcp) {
            auto c = std::make_unique<ConnT<beast::tcp_stream>>(impl.io);
            connectTcp(c->ws.next_layer());
            setupStream(c->ws, headers);
            c->ws.handshake(res, ep.host + ":" + ep.port, fullTarget, ec);
            if (ec) handshakeError(ec);
            impl.conn = std::move(c);
        } else {
            impl.tls.emplace(ssl::context::tls_client);
            impl.tls->set_default_verify_paths(ec);
            if (!settings.caFile.empty()) {
                impl.tls->load_verify_file(settings.caFile, ec);
                if (ec)
                    throw TransportError(
                        TransportError::Kind::Connect,
                        "cannot load the CA file " + settings.caFile + ": " + ec.message());
            }
            impl.tls->set_verify_mode(ssl::verify_peer);
            auto c =
                std::make_unique<ConnT<beast::ssl_stream<beast::tcp_stream>>>(impl.io, *impl.tls);
            connectTcp(beast::get_lowest_layer(c->ws));
            auto& tlsStream = c->ws.next_layer();
            SSL_set_tlsext_host_name(tlsStream.native_handle(), ep.host.c_str());
            tlsStream.set_verify_callback(ssl::host_name_verification(ep.host));
            tlsStream.handshake(ssl::stream_base::client, ec);
            if (ec)
                throw TransportError(TransportError::Kind::Connect,
                                     "TLS handshake with " + ep.host + " failed: " + ec.message());
            setupStream(c->ws, headers);
            c->ws.handshake(res, ep.host, fullTarget, ec);
            if (ec) handshakeError(ec);
            impl.conn = std::move(c);
        }
    }
    impl.io.restart();
    auto self = impl_;
    net::post(impl.io, [self] { self->readLoop(); });
    impl.work.emplace(impl.io.get_executor());
    impl.thread = std::thread([self] { self->io.run(); });
}

WebSocketClient::~WebSocketClient() {
    auto self = impl_;
    {
        std::unique_lock lock(self->m);
        bool open = !self->closed && !self->closing;
        lock.unlock();
        if (open) close(1000, "");
        lock.lock();
        self->cv.wait_for(lock, std::chrono::seconds(2), [&] { return self->closed; });
    }
    // Abort the socket and let the loop run dry: every pending operation completes (with an
    // error) and drops its reference to the Impl, which is then freed with the last handle.
    net::post(self->io, [self] {
        self->conn->abort();
        self->work.reset();
    });
    if (self->thread.joinable()) self->thread.join();
}

void WebSocketClient::sendMessage(bool binary, std::string data) {
    auto self = impl_;
    std::promise<bool> p;
    auto f = p.get_future();
    {
        std::lock_guard lock(self->m);
        if (self->closed || self->closing)
            throw TransportError(TransportError::Kind::Lost, "the WebSocket is closed");
    }
    net::post(self->io, [self, binary, data = std::move(data), p = std::move(p)]() mutable {
        self->outbox.emplace_back(std::make_pair(binary, std::move(data)), std::move(p));
        self->pump();
    });
    if (!f.get())
        throw TransportError(TransportError::Kind::Lost, "the WebSocket connection broke");
}

void WebSocketClient::sendText(std::string data) {
    sendMessage(false, std::move(data));
}

void WebSocketClient::sendBinary(std::string data) {
    sendMessage(true, std::move(data));
}

WebSocketClient::ReadResult WebSocketClient::read(
    WsMessage& out, std::optional<std::chrono::milliseconds> timeout) {
    std::unique_lock lock(impl_->m);
    auto ready = [&] { return !impl_->inbox.empty() || impl_->closed; };
    if (timeout) {
        if (!impl_->cv.wait_for(lock, *timeout, ready)) return ReadResult::Timeout;
    } else {
        impl_->cv.wait(lock, ready);
    }
    if (!impl_->inbox.empty()) {
        out = std::move(impl_->inbox.front());
        impl_->inbox.pop_front();
        impl_->inboxBytes -= out.data.size();
        if (impl_->readPaused && impl_->inboxBytes <= kInboxLimit / 2) {
            impl_->readPaused = false;
            auto self = impl_;
            net::post(self->io, [self] { self->readLoop(); });
        }
        return ReadResult::Message;
    }
    return ReadResult::Closed;
}

void WebSocketClient::close(int code, const std::string& reason) {
    auto self = impl_;
    {
        std::lock_guard lock(self->m);
        if (self->closed || self->closing) return;
        self->closing = true;
    }
    net::post(self->io, [self, code, reason] {
        self->closeWanted.emplace(code, reason);
        self->pump();
    });
}

bool WebSocketClient::isOpen() const {
    std::lock_guard lock(impl_->m);
    return !impl_->closed && !impl_->closing;
}

int WebSocketClient::closeCode() const {
    std::lock_guard lock(impl_->m);
    return impl_->closed ? impl_->code : 0;
}

std::string WebSocketClient::closeReason() const {
    std::lock_guard lock(impl_->m);
    return impl_->reasonText;
}

}  // namespace sandbox::client
