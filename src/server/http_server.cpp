#include "server/http_server.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <iostream>
#include <sstream>

#include "core/errors.hpp"
#include "server/http_request.hpp"

namespace sandbox::server {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using net::awaitable;
using net::use_awaitable;
using tcp = net::ip::tcp;
using unix_sock = net::local::stream_protocol;

awaitable<void> Responder::beginSse() {
    static const Headers kSse = {{"Cache-Control", "no-cache"}};
    co_await beginStream(200, "text/event-stream", kSse);
}

awaitable<void> Responder::sendJson(int status, const nlohmann::json& body) {
    co_await send(status, "application/json",
                  body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

bool isWebSocketUpgrade(const Request& req) {
    auto up = req.header("upgrade");
    return up && beast::iequals(*up, "websocket");
}

awaitable<std::shared_ptr<WebSocket>> Responder::acceptWebSocket() {
    throw std::runtime_error("this response cannot be upgraded to a WebSocket");
    co_return nullptr;
}

namespace {

// After a refusal, the connection stops sending and reads (discarding) what the client still
// sends, for this long or this many bytes at most, so that it reads the answer rather than a
// reset; the socket is then closed.
constexpr auto kLinger = std::chrono::seconds(1);
constexpr std::size_t kLingerBytes = 4 * 1024 * 1024;
// How long accepting pauses when accept() fails for want of descriptors or memory.
constexpr auto kAcceptPause = std::chrono::milliseconds(100);

std::string defaultRefusalBody(const Refusal& r) {
    core::ApiError err(r.code, r.message, r.context);
    err.withStatus(r.status);
    return err.envelope().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A parse error of Beast's HTTP parser (a malformed request), as opposed to the end of the
// input, a limit, or a socket error.
bool isParseError(const beast::error_code& ec) {
    static const auto& category = http::make_error_code(http::error::bad_method).category();
    return ec.category() == category && ec != http::error::end_of_stream &&
           ec != http::error::partial_message && ec != http::error::need_more &&
           ec != http::error::need_buffer && ec != http::error::body_limit &&
           ec != http::error::header_limit && ec != http::error::buffer_overflow;
}

// One open connection, counted for ServerOptions::maxConnections while it lives.
class ConnectionSlot {
  public:
    explicit ConnectionSlot(std::shared_ptr<std::atomic<std::size_t>> count)
        : count_(std::move(count)) {
        ++*count_;
    }
    ~ConnectionSlot() { --*count_; }
    ConnectionSlot(const ConnectionSlot&) = delete;
    ConnectionSlot& operator=(const ConnectionSlot&) = delete;

  private:
    std::shared_ptr<std::atomic<std::size_t>> count_;
};

// A WebSocket over an accepted connection: one reader, a queue with one writer coroutine.
template <class Socket>
class WsSession : public WebSocket, public std::enable_shared_from_this<WsSession<Socket>> {
  public:
    explicit WsSession(Socket socket) : ws_(std::move(socket)) {}

    websocket::stream<Socket>& stream() { return ws_; }
    /// Keeps the connection counted while the WebSocket lives.
    void holdSlot(std::shared_ptr<ConnectionSlot> slot) { slot_ = std::move(slot); }

    awaitable<bool> read(Message& out) override {
        if (broken_) co_return false;
        beast::flat_buffer buf;
        beast::error_code ec;
        co_await ws_.async_read(buf, net::redirect_error(use_awaitable, ec));
        if (ec) {
            if (ec == websocket::error::closed)
                closeCode_ = ws_.reason().code == websocket::close_code::none
                                 ? 1005
                                 : static_cast<int>(ws_.reason().code);
            else
                broken_ = true;
            open_ = false;
            notifyWaiters();
            co_return false;
        }
        out.binary = ws_.got_binary();
        out.data = beast::buffers_to_string(buf.data());
        co_return true;
    }

    void sendText(std::string data) override { enqueue(false, std::move(data)); }
    void sendBinary(std::string data) override { enqueue(true, std::move(data)); }

    void close(int code, std::string reason) override {
        if (!open_ || closeRequested_) return;
        closeRequested_ = true;
        open_ = false;
        closeReason_ = websocket::close_reason(static_cast<websocket::close_code>(code),
                                               beast::string_view(reason.data(), reason.size()));
        startWriter();
    }

    awaitable<bool> drain() override {
        const auto never = std::chrono::steady_clock::time_point::max();
        bool ok = co_await waitBelow(0, never);
        co_return ok;
    }

    awaitable<bool> waitBelow(std::size_t bytes,
                              std::chrono::steady_clock::time_point deadline) override {
        // Each waiter has its own timer (a shared one would be re-armed by one waiter while
        // another waits on it); the writer cancels them all after every frame.
        net::steady_timer timer(ws_.get_executor());
        while (!broken_ && bufferedBytes_ > bytes) {
            if (std::chrono::steady_clock::now() >= deadline) co_return false;
            timer.expires_at(deadline);
            waiters_.push_back(&timer);
            beast::error_code ec;
            co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
            std::erase(waiters_, &timer);
        }
        co_return !broken_;
    }

    std::size_t buffered() const override { return bufferedBytes_; }
    bool isOpen() const override { return open_ && !broken_; }
    int closeCode() const override { return broken_ ? 1006 : closeCode_; }

  private:
    void enqueue(bool binary, std::string data) {
        if (!open_ || broken_) return;
        bufferedBytes_ += data.size();
        queue_.emplace_back(binary, std::move(data));
        startWriter();
    }

    void startWriter() {
        if (writing_) return;
        writing_ = true;
        net::co_spawn(
            ws_.get_executor(),
            [self = this->shared_from_this()]() -> awaitable<void> { co_await self->writeLoop(); },
            net::detached);
    }

    awaitable<void> writeLoop() {
        beast::error_code ec;
        while (!queue_.empty() && !broken_) {
            auto item = std::move(queue_.front());
            queue_.pop_front();
            ws_.binary(item.first);
            co_await ws_.async_write(net::buffer(item.second),
                                     net::redirect_error(use_awaitable, ec));
            bufferedBytes_ -= item.second.size();
            if (ec) broken_ = true;
            notifyWaiters();
        }
        if (closeRequested_ && !closeSent_ && !broken_) {
            closeSent_ = true;
            co_await ws_.async_close(closeReason_, net::redirect_error(use_awaitable, ec));
        }
        if (broken_) {
            queue_.clear();
            bufferedBytes_ = 0;
        }
        writing_ = false;
        notifyWaiters();
    }

    void notifyWaiters() {
        for (auto* t : waiters_) t->cancel();
    }

    websocket::stream<Socket> ws_;
    std::shared_ptr<ConnectionSlot> slot_;
    std::vector<net::steady_timer*> waiters_;
    std::deque<std::pair<bool, std::string>> queue_;
    std::size_t bufferedBytes_ = 0;
    websocket::close_reason closeReason_;
    int closeCode_ = 1005;
    bool writing_ = false, open_ = true, broken_ = false, closeRequested_ = false,
         closeSent_ = false;
};

template <class Socket>
class Connection : public Responder, public std::enable_shared_from_this<Connection<Socket>> {
  public:
    Connection(Socket socket, std::shared_ptr<const Handler> handler,
               std::shared_ptr<const ServerOptions> opts, std::shared_ptr<ConnectionSlot> slot)
        : socket_(std::move(socket)),
          handler_(std::move(handler)),
          opts_(std::move(opts)),
          slot_(std::move(slot)),
          watchDone_(socket_.get_executor()) {
        // Beast reads at most the buffer's free capacity (at least 512 bytes): a request body
        // (a file upload) would otherwise arrive 512 bytes per system call.
        buffer_.reserve(16 * 1024);
    }

    awaitable<void> run() {
        auto self = this->shared_from_this();
        std::optional<Refusal> refusal;     // the answer to give before closing, if any
        bool linger = false;                // request bytes may be left unread: close gently
        setDeadline(opts_->headerTimeout);  // the first head counts from the accept
        for (bool first = true;; first = false) {
            beast::error_code ec;
            if (!first) {
                if (buffer_.size() == 0) {
                    // Kept alive: wait for the first byte of the next request. Nothing within
                    // the idle timeout (or the peer's EOF): close without an answer.
                    setDeadline(opts_->idleTimeout);
                    std::size_t n = co_await socket_.async_read_some(
                        buffer_.prepare(16 * 1024), net::redirect_error(use_awaitable, ec));
                    buffer_.commit(n);
                    clearDeadline();
                    if (n == 0) break;
                    ec = {};
                }
                setDeadline(opts_->headerTimeout);
            }
            http::request_parser<http::string_body> parser;
            configureRequestParser(parser, opts_->maxBodyBytes, opts_->maxHeaderBytes);
            // A request the hijack hook takes is not ours to limit: the body limit is applied
            // after its head instead (Beast checks a Content-Length against it while parsing
            // the head).
            if (opts_->hijack) parser.body_limit(boost::none);
            co_await http::async_read_header(socket_, buffer_, parser,
                                             net::redirect_error(use_awaitable, ec));
            clearDeadline();
            if (ec) {
                refusal = readFailure(ec, false);
                break;  // without a refusal: EOF or reset, the peer is gone
            }
            auto& head = parser.get();
            resetState(head.keep_alive(), head.version());
            Request req = requestHead(head);
            const bool bodyPending = !parser.is_done();

            // Taken over whole (a proxy), before any other check.
            if (opts_->hijack) {
                RawHandler raw;
                try {
                    raw = opts_->hijack(req);
                } catch (const std::exception&) {
                    raw = nullptr;
                }
                if (raw) {
                    std::ostringstream os;
                    os << head.base();
                    auto rest = buffer_.data();
                    std::string pending(static_cast<const char*>(rest.data()), rest.size());
                    buffer_.consume(buffer_.size());
                    upgraded_ = true;
                    co_await raw(makeRawStream(std::move(socket_)), os.str(), std::move(pending));
                    co_return;
                }
            }

            if (opts_->hijack) {
                auto length = parser.content_length();
                if (length && *length > opts_->maxBodyBytes) {
                    refusal = readFailure(http::error::body_limit, false);
                    break;
                }
                parser.body_limit(opts_->maxBodyBytes);  // a chunked body, counted as it comes
            }

            // Refused from the head alone, before a byte of the body is read.
            std::optional<CannedResponse> early;
            if (std::string why = refusedPath(req.path); !why.empty()) {
                core::ApiError err =
                    core::validationError(why, "path", "INVALID_PATH", "contains a NUL byte");
                early = canned(Refusal{400, err.code(), why, err.context()});
            } else if (opts_->checkHead) {
                try {
                    early = opts_->checkHead(req);
                } catch (const std::exception& e) {
                    early = canned(Refusal{500, "INTERNAL_ERROR", e.what()});
                }
            }
            if (early) {
                if (bodyPending) keepAlive_ = false;  // the body is not read: no next request
                co_await send(early->status, early->contentType, std::move(early->body),
                              early->headers);
                linger = bodyPending;
                if (gone_ || !keepAlive_) break;
                continue;
            }

            // Clients that announce a large body (curl does) wait for "100 Continue" first.
            if (bodyPending && beast::iequals(head[http::field::expect], "100-continue")) {
                http::response<http::empty_body> cont{http::status::continue_, head.version()};
                co_await http::async_write(socket_, cont, net::redirect_error(use_awaitable, ec));
                if (ec) break;
            }
            if (bodyPending) {
                // Inactivity, not a total: every piece that arrives moves the deadline.
                setDeadline(opts_->bodyTimeout);
                while (!ec && !parser.is_done()) {
                    co_await http::async_read_some(socket_, buffer_, parser,
                                                   net::redirect_error(use_awaitable, ec));
                    extendDeadline(opts_->bodyTimeout);
                }
                clearDeadline();
            }
            if (ec) {
                refusal = readFailure(ec, true);
                break;
            }
            auto msg = parser.release();
            req.body = std::move(msg.body());
            currentMsg_ = &msg;

            std::optional<std::string> failure;
            try {
                co_await (*handler_)(req, *this);
            } catch (const std::exception& e) {
                failure = e.what();
            }
            currentMsg_ = nullptr;
            if (upgraded_) co_return;  // the WebSocket owned the socket
            if (failure) {
                if (!started_ && !gone_) {
                    core::ApiError err("INTERNAL_ERROR", *failure);
                    co_await sendJson(500, err.envelope());
                } else {
                    keepAlive_ = false;
                }
            }
            if (!started_ && !gone_) {
                core::ApiError err("INTERNAL_ERROR", "handler produced no response");
                co_await sendJson(500, err.envelope());
            }
            if (sse_ && !sseEnded_) co_await endSse();
            co_await stopWatching();
            if (gone_ || !keepAlive_) break;
        }
        if (refusal) {
            co_await sendRefusal(*refusal);
            linger = true;
        }
        if (linger && !gone_)
            co_await lingerAndClose();
        else
            closeNow();
    }

    /// Answers a connection over ServerOptions::maxConnections with `refusal`, without reading
    /// a request from it, and closes it.
    awaitable<void> refuse(const Refusal& refusal) {
        auto self = this->shared_from_this();
        co_await sendRefusal(refusal);
        if (gone_)
            closeNow();
        else
            co_await lingerAndClose();
    }

    awaitable<void> send(int status, std::string_view contentType, std::string&& body,
                         const Headers& extra) override {
        started_ = true;
        http::response<http::string_body> res{static_cast<http::status>(status), version_};
        res.set(http::field::server, opts_->serverName);
        // An empty content type sends none (a 204 has no content to type).
        if (!contentType.empty()) res.set(http::field::content_type, contentType);
        for (const auto& [k, v] : extra) res.set(k, v);
        res.body() = std::move(body);
        res.keep_alive(keepAlive_);
        res.prepare_payload();
        beast::error_code ec;
        co_await http::async_write(socket_, res, net::redirect_error(use_awaitable, ec));
        if (ec) markGone();
    }

    awaitable<void> beginStream(int status, std::string_view contentType,
                                const Headers& extra) override {
        started_ = true;
        sse_ = true;
        http::response<http::empty_body> res{static_cast<http::status>(status), version_};
        res.set(http::field::server, opts_->serverName);
        res.set(http::field::content_type, contentType);
        for (const auto& [k, v] : extra) res.set(k, v);
        res.set(http::field::connection, keepAlive_ ? "keep-alive" : "close");
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        beast::error_code ec;
        co_await http::async_write_header(socket_, sr, net::redirect_error(use_awaitable, ec));
        if (ec) {
            markGone();
            co_return;
        }
        startWatching();
    }

    void queueEvent(std::string_view json) override {
        pending_.append("data: ");
        pending_.append(json);
        pending_.append("\n\n");
    }

    void queueRaw(std::string_view bytes) override { pending_.append(bytes); }

    void queueComment(std::string_view text) override {
        pending_.append(": ");
        pending_.append(text);
        pending_.append("\n\n");
    }

    std::size_t queued() const override { return pending_.size(); }

    awaitable<bool> flush() override {
        if (gone_) co_return false;
        if (pending_.empty()) co_return true;
        // Another flush (the keep-alive) may be writing: wait for it, writes must not interleave.
        while (writingNow_) {
            beast::error_code ec;
            co_await writeDone_.async_wait(net::redirect_error(use_awaitable, ec));
        }
        if (gone_) co_return false;
        if (pending_.empty()) co_return true;
        writing_.swap(pending_);
        pending_.clear();
        writingNow_ = true;
        lastWrite_ = std::chrono::steady_clock::now();
        beast::error_code ec;
        co_await net::async_write(socket_, http::make_chunk(net::buffer(writing_)),
                                  net::redirect_error(use_awaitable, ec));
        writingNow_ = false;
        writeDone_.cancel();
        writing_.clear();
        if (ec) {
            markGone();
            co_return false;
        }
        co_return true;
    }

    awaitable<void> endSse() override {
        if (sseEnded_) co_return;
        sseEnded_ = true;
        co_await flush();
        if (gone_) co_return;
        beast::error_code ec;
        co_await net::async_write(socket_, http::make_chunk_last(),
                                  net::redirect_error(use_awaitable, ec));
        if (ec) markGone();
    }

    void enableKeepAlive(std::chrono::milliseconds interval) override {
        if (!sse_ || keepAliveOn_) return;
        keepAliveOn_ = true;
        net::co_spawn(
            socket_.get_executor(),
            [self = this->shared_from_this(), interval]() -> awaitable<void> {
                net::steady_timer timer(self->socket_.get_executor());
                while (self->sse_ && !self->sseEnded_ && !self->gone_) {
                    timer.expires_after(interval / 4);
                    beast::error_code ec;
                    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
                    if (!self->sse_ || self->sseEnded_ || self->gone_) break;
                    if (self->writingNow_ ||
                        std::chrono::steady_clock::now() - self->lastWrite_ < interval)
                        continue;
                    self->queueComment("keepalive");
                    co_await self->flush();
                }
                self->keepAliveOn_ = false;
            },
            net::detached);
    }

    awaitable<std::shared_ptr<WebSocket>> acceptWebSocket() override {
        if (!currentMsg_ || started_ || !websocket::is_upgrade(*currentMsg_))
            throw std::runtime_error("not a WebSocket upgrade request");
        started_ = true;
        upgraded_ = true;
        auto ws = std::make_shared<WsSession<Socket>>(std::move(socket_));
        ws->holdSlot(std::move(slot_));
        auto& stream = ws->stream();
        stream.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
        stream.set_option(websocket::stream_base::decorator(
            [name = opts_->serverName](websocket::response_type& r) {
                r.set(http::field::server, name);
            }));
        stream.read_message_max(64 * 1024 * 1024);
        beast::error_code ec;
        co_await stream.async_accept(*currentMsg_, net::redirect_error(use_awaitable, ec));
        if (ec) throw std::runtime_error("WebSocket handshake failed: " + ec.message());
        co_return ws;
    }

    bool clientGone() const override { return gone_; }
    bool started() const override { return started_; }
    void onClientGone(std::function<void()> cb) override {
        onGone_ = std::move(cb);
        if (gone_ && onGone_) std::exchange(onGone_, nullptr)();
    }

  private:
    // What a failed read of a request head (or body, `inBody`) is answered: 408 when the
    // deadline passed, 413/431 over a limit, 400 for what cannot be parsed; nullopt when the
    // peer is gone (EOF, reset), which gets no answer.
    std::optional<Refusal> readFailure(const beast::error_code& ec, bool inBody) const {
        if (timedOut_) {
            auto limit = inBody ? opts_->bodyTimeout : opts_->headerTimeout;
            return Refusal{408, "REQUEST_TIMEOUT",
                           std::string(inBody ? "The request body stopped arriving: nothing for "
                                              : "The request head did not arrive within ") +
                               std::to_string(limit.count()) + " ms"};
        }
        if (ec == http::error::body_limit)
            return Refusal{413,
                           "FILE_TOO_LARGE",
                           "Request body exceeds the limit of " +
                               std::to_string(opts_->maxBodyBytes) + " bytes",
                           {{"maxSize", opts_->maxBodyBytes}}};
        if (ec == http::error::header_limit)
            return Refusal{431, "VALIDATION_FAILED",
                           "Request head (request line and headers) exceeds the limit of " +
                               std::to_string(opts_->maxHeaderBytes) + " bytes"};
        if (isParseError(ec))
            return Refusal{400, "VALIDATION_FAILED", "Malformed HTTP request: " + ec.message()};
        return std::nullopt;
    }

    CannedResponse canned(const Refusal& r) const {
        CannedResponse c;
        c.status = r.status;
        c.body = opts_->refusalBody ? opts_->refusalBody(r) : defaultRefusalBody(r);
        if (r.status == 503) c.headers.emplace_back("Retry-After", "1");
        return c;
    }

    // Sends a refusal as the connection's last response (the write bounded by kLinger).
    awaitable<void> sendRefusal(const Refusal& r) {
        keepAlive_ = false;
        CannedResponse c = canned(r);
        setDeadline(std::chrono::duration_cast<std::chrono::milliseconds>(kLinger));
        co_await send(c.status, c.contentType, std::move(c.body), c.headers);
        clearDeadline();
    }

    // Closes after our last response while the client may still be sending: stop sending,
    // discard what arrives (bounded by kLinger and kLingerBytes) until the client's EOF, then
    // close. Closing at once could reset the connection before the client read the answer.
    awaitable<void> lingerAndClose() {
        beast::error_code ec;
        socket_.shutdown(Socket::shutdown_send, ec);
        setDeadline(std::chrono::duration_cast<std::chrono::milliseconds>(kLinger));
        std::size_t drained = 0;
        while (!ec && drained < kLingerBytes) {
            buffer_.clear();
            std::size_t n = co_await socket_.async_read_some(
                buffer_.prepare(16 * 1024), net::redirect_error(use_awaitable, ec));
            drained += n;
        }
        clearDeadline();
        closeNow();
    }

    void closeNow() {
        beast::error_code ignored;
        socket_.shutdown(Socket::shutdown_send, ignored);
        socket_.close(ignored);
        slot_.reset();
    }

    // ---- read deadlines: a read (or the refusal's write) still pending when the deadline
    // passes is cancelled and timedOut_ is set. Only armed around reads of a request (and
    // while refusing), never while a handler runs.
    void setDeadline(std::chrono::milliseconds limit) {
        timedOut_ = false;
        if (limit.count() <= 0) {
            clearDeadline();
            return;
        }
        deadlineOn_ = true;
        deadline_ = std::chrono::steady_clock::now() + limit;
        waitDeadline();
    }

    // Moves an armed deadline to `limit` from now (progress was made); cheap, no timer call.
    void extendDeadline(std::chrono::milliseconds limit) {
        if (deadlineOn_) deadline_ = std::chrono::steady_clock::now() + limit;
    }

    void clearDeadline() {
        deadlineOn_ = false;
        deadlineTimer_.cancel();
    }

    void waitDeadline() {
        deadlineTimer_.expires_at(deadline_);
        deadlineTimer_.async_wait([weak = this->weak_from_this()](const beast::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || !self->deadlineOn_) return;
            if (std::chrono::steady_clock::now() < self->deadline_)
                return self->waitDeadline();  // moved on meanwhile
            self->deadlineOn_ = false;
            self->timedOut_ = true;
            beast::error_code ignored;
            self->socket_.cancel(ignored);
        });
    }

    void resetState(bool keepAlive, unsigned version) {
        keepAlive_ = keepAlive;
        version_ = version;
        started_ = sse_ = sseEnded_ = false;
        lastWrite_ = std::chrono::steady_clock::now();
        pending_.clear();
        onGone_ = nullptr;
    }

    void markGone() {
        if (gone_) return;
        gone_ = true;
        if (onGone_) std::exchange(onGone_, nullptr)();
    }

    // While a stream is open, read from the socket so a disconnect is noticed even when no
    // output is being written. Bytes that arrive (a pipelined request) stay in buffer_.
    void startWatching() {
        watching_ = true;
        watchDone_.expires_at(net::steady_timer::time_point::max());
        net::co_spawn(
            socket_.get_executor(),
            [self = this->shared_from_this()]() -> awaitable<void> {
                for (;;) {
                    beast::error_code ec;
                    if (self->buffer_.size() > 64 * 1024) break;  // keep what is there, stop
                    auto n = co_await self->socket_.async_read_some(
                        self->buffer_.prepare(4096), net::redirect_error(use_awaitable, ec));
                    self->buffer_.commit(n);
                    if (ec == net::error::operation_aborted && !self->watching_) break;
                    if (ec) {
                        self->markGone();
                        break;
                    }
                }
                self->watchRunning_ = false;
                self->watchDone_.cancel();
            },
            net::detached);
        watchRunning_ = true;
    }

    awaitable<void> stopWatching() {
        if (!watchRunning_) co_return;
        watching_ = false;
        beast::error_code ec;
        socket_.cancel(ec);
        while (watchRunning_) {
            co_await watchDone_.async_wait(net::redirect_error(use_awaitable, ec));
        }
    }

    Socket socket_;
    http::request<http::string_body>* currentMsg_ = nullptr;
    bool upgraded_ = false;
    std::shared_ptr<const Handler> handler_;
    std::shared_ptr<const ServerOptions> opts_;
    std::shared_ptr<ConnectionSlot> slot_;
    beast::flat_buffer buffer_;
    net::steady_timer watchDone_;
    std::string pending_, writing_;
    std::function<void()> onGone_;
    unsigned version_ = 11;
    bool keepAlive_ = true, started_ = false, sse_ = false, sseEnded_ = false, gone_ = false;
    bool watching_ = false, watchRunning_ = false, writingNow_ = false, keepAliveOn_ = false;
    std::chrono::steady_clock::time_point lastWrite_ = std::chrono::steady_clock::now();
    net::steady_timer writeDone_{socket_.get_executor(), net::steady_timer::time_point::max()};
    net::steady_timer deadlineTimer_{socket_.get_executor()};
    std::chrono::steady_clock::time_point deadline_;
    bool deadlineOn_ = false, timedOut_ = false;
};

}  // namespace

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
    Impl(net::io_context& io, Handler h, ServerOptions o)
        : io(io),
          handler(std::make_shared<const Handler>(std::move(h))),
          opts(std::make_shared<const ServerOptions>(std::move(o))) {}
    net::io_context& io;
    std::shared_ptr<const Handler> handler;
    std::shared_ptr<const ServerOptions> opts;
    std::shared_ptr<std::atomic<std::size_t>> openConnections =
        std::make_shared<std::atomic<std::size_t>>(0);
    std::optional<tcp::acceptor> tcpAcceptor;
    std::optional<unix_sock::acceptor> unixAcceptor;
    std::string unixPath;
    std::uint16_t port = 0;

    template <class Acceptor, class Socket>
    awaitable<void> acceptLoop(Acceptor& acceptor) {
        auto self = shared_from_this();
        net::steady_timer pause(io);
        for (;;) {
            beast::error_code ec;
            Socket sock(io);
            co_await acceptor.async_accept(sock, net::redirect_error(use_awaitable, ec));
            if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
            if (ec == net::error::connection_aborted) continue;  // that client left already
            if (ec) {
                // Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM), or anything
                // else: the connection stays in the backlog, and trying again at once would
                // only spin. Pause, keep serving the open connections, then try again.
                pause.expires_after(kAcceptPause);
                co_await pause.async_wait(net::redirect_error(use_awaitable, ec));
                continue;
            }
            if constexpr (std::is_same_v<Socket, tcp::socket>)
                sock.set_option(tcp::no_delay(true), ec);
            if (opts->maxConnections > 0 && *openConnections >= opts->maxConnections) {
                auto conn =
                    std::make_shared<Connection<Socket>>(std::move(sock), handler, opts, nullptr);
                Refusal busy{503, "CONTAINER_UNAVAILABLE",
                             "Too many connections (at most " +
                                 std::to_string(opts->maxConnections) +
                                 " are served at once); retry shortly"};
                net::co_spawn(
                    io,
                    [conn, busy = std::move(busy)]() -> awaitable<void> {
                        co_await conn->refuse(busy);
                    },
                    net::detached);
                continue;
            }
            auto slot = std::make_shared<ConnectionSlot>(openConnections);
            auto conn = std::make_shared<Connection<Socket>>(std::move(sock), handler, opts,
                                                             std::move(slot));
            net::co_spawn(
                io, [conn]() -> awaitable<void> { co_await conn->run(); }, net::detached);
        }
    }
};

Server::Server(net::io_context& io, Handler handler, ServerOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(handler), std::move(options))) {}

Server::~Server() {
    stop();
}

void Server::listen(const std::string& spec) {
    if (spec.rfind("fd:", 0) == 0) {
        // A listening socket made by whoever started us (sandboxd makes each agent's).
        char* end = nullptr;
        long fd = std::strtol(spec.c_str() + 3, &end, 10);
        int listening = 0;
        socklen_t len = sizeof listening;
        sockaddr_storage addr{};
        socklen_t alen = sizeof addr;
        if (spec.size() == 3 || !end || *end || fd < 0 || fd > 1 << 20 ||
            ::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 ||
            !listening ||
            ::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &alen) != 0)
            throw std::runtime_error("--listen " + spec + ": not a listening socket");
        ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
        if (addr.ss_family == AF_UNIX) {
            impl_->unixAcceptor.emplace(impl_->io, unix_sock(), static_cast<int>(fd));
            net::co_spawn(
                impl_->io,
                impl_->acceptLoop<unix_sock::acceptor, unix_sock::socket>(*impl_->unixAcceptor),
                net::detached);
        } else {
            auto proto = addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
            impl_->tcpAcceptor.emplace(impl_->io, proto, static_cast<int>(fd));
            impl_->port = impl_->tcpAcceptor->local_endpoint().port();
            net::co_spawn(impl_->io,
                          impl_->acceptLoop<tcp::acceptor, tcp::socket>(*impl_->tcpAcceptor),
                          net::detached);
        }
        return;
    }
    if (spec.rfind("unix:", 0) == 0) {
        std::string path = spec.substr(5);
        if (path.empty()) throw std::runtime_error("--listen unix: needs a socket path");
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
        impl_->unixAcceptor.emplace(impl_->io);
        auto& a = *impl_->unixAcceptor;
        a.open();
        a.bind(unix_sock::endpoint(path));
        // Whoever can connect can use the server (the embedded sandboxd has no key): this
        // user's alone, whatever the umask.
        ::chmod(path.c_str(), 0600);
        a.listen(net::socket_base::max_listen_connections);
        impl_->unixPath = path;
        net::co_spawn(impl_->io, impl_->acceptLoop<unix_sock::acceptor, unix_sock::socket>(a),
                      net::detached);
        return;
    }
    auto colon = spec.rfind(':');
    if (colon == std::string::npos)
        throw std::runtime_error("--listen expects HOST:PORT or unix:PATH, got '" + spec + "'");
    std::string host = spec.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    int port = 0;
    try {
        port = std::stoi(spec.substr(colon + 1));
    } catch (...) {
        throw std::runtime_error("invalid port in '" + spec + "'");
    }
    if (port < 0 || port > 65535) throw std::runtime_error("invalid port in '" + spec + "'");
    tcp::resolver resolver(impl_->io);
    auto results = resolver.resolve(host, std::to_string(port));
    if (results.empty()) throw std::runtime_error("cannot resolve '" + host + "'");
    tcp::endpoint ep = results.begin()->endpoint();
    impl_->tcpAcceptor.emplace(impl_->io);
    auto& a = *impl_->tcpAcceptor;
    a.open(ep.protocol());
    a.set_option(net::socket_base::reuse_address(true));
    a.bind(ep);
    a.listen(net::socket_base::max_listen_connections);
    impl_->port = a.local_endpoint().port();
    net::co_spawn(impl_->io, impl_->acceptLoop<tcp::acceptor, tcp::socket>(a), net::detached);
}

std::uint16_t Server::port() const {
    return impl_->port;
}

void Server::stop() {
    beast::error_code ec;
    if (impl_->tcpAcceptor && impl_->tcpAcceptor->is_open()) impl_->tcpAcceptor->close(ec);
    if (impl_->unixAcceptor && impl_->unixAcceptor->is_open()) {
        impl_->unixAcceptor->close(ec);
        if (!impl_->unixPath.empty()) ::unlink(impl_->unixPath.c_str());
    }
}

}  // namespace sandbox::server
