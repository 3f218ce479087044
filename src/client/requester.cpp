#include "client/requester.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/error_mapping.hpp"
#include "sandbox/errors.hpp"

namespace sandbox::detail {

using nlohmann::json;

namespace {
class SteadyClock final : public RetryClock {
  public:
    std::chrono::steady_clock::time_point now() override {
        return std::chrono::steady_clock::now();
    }
    void sleep(std::chrono::milliseconds d) override { std::this_thread::sleep_for(d); }
};
}  // namespace

RetryClock& RetryClock::real() {
    static SteadyClock clock;
    return clock;
}

client::HttpResponse withRetry(const RetryPolicy& policy, bool idempotent, RetryClock& clock,
                               const std::function<client::HttpResponse()>& attempt) {
    const auto deadline = clock.now() + policy.budget;
    auto backoff = policy.firstBackoff;
    auto wait = [&] {
        if (clock.now() + backoff >= deadline) return false;
        clock.sleep(backoff);
        backoff = std::min(backoff * 2, policy.maxBackoff);
        return true;
    };
    for (;;) {
        client::HttpResponse r;
        try {
            r = attempt();
        } catch (const client::TransportError& e) {
            // Refused: nothing was sent, so even a request that is not idempotent may go again.
            if (e.kind() == client::TransportError::Kind::Connect && e.refused() && wait())
                continue;
            throw;
        }
        if (r.status == 503 && idempotent && wait()) continue;
        return r;
    }
}

[[noreturn]] void rethrowTransport(const client::TransportError& e, const std::string& operation,
                                   bool midStream) {
    json ctx = {{"operation", operation}};
    switch (e.kind()) {
        case client::TransportError::Kind::Connect:
            throw ConnectionError("CONNECTION_FAILED", e.what(), 0, ctx, operation);
        case client::TransportError::Kind::Timeout:
            throw TimeoutError("TIMEOUT", e.what(), 0, ctx, operation);
        case client::TransportError::Kind::Lost:
            if (midStream) throw StreamLostError("STREAM_LOST", e.what(), 0, ctx, operation);
            throw SandboxGoneError("SANDBOX_GONE", e.what(), 0, ctx, operation);
    }
    throw TransportError("TRANSPORT_ERROR", e.what(), 0, ctx, operation);
}

// ---- HttpPool -------------------------------------------------------------------------------

std::unique_ptr<client::HttpConnection> HttpPool::acquire(const client::Endpoint& ep) {
    {
        std::lock_guard lock(m_);
        for (auto it = idle_.begin(); it != idle_.end(); ++it) {
            const auto& e = (*it)->endpoint();
            if (e.kind == ep.kind && e.host == ep.host && e.port == ep.port && e.path == ep.path &&
                e.basePath == ep.basePath) {
                auto c = std::move(*it);
                idle_.erase(it);
                c->setIoTimeout(settings_.ioTimeout);
                return c;
            }
        }
    }
    return std::make_unique<client::HttpConnection>(ep, settings_);
}

void HttpPool::release(std::unique_ptr<client::HttpConnection> c) {
    if (!c || !c->connected()) return;
    std::lock_guard lock(m_);
    if (idle_.size() < maxIdle_) idle_.push_back(std::move(c));
}

// ---- EventSource ----------------------------------------------------------------------------

EventSource::EventSource(std::unique_ptr<client::HttpConnection> conn, std::string operation)
    : conn_(std::move(conn)), operation_(std::move(operation)) {}

EventSource::~EventSource() {
    // Closing mid-stream tells the server nobody listens any more (it stops the command).
    if (!eof_ && conn_) conn_->close();
}

void EventSource::setIdleTimeout(std::chrono::milliseconds t) {
    conn_->setIoTimeout(t);
}

void EventSource::interrupt() {
    conn_->interrupt();
}

std::optional<SseEvent> EventSource::next() {
    for (;;) {
        if (queuePos_ < queue_.size()) return std::move(queue_[queuePos_++]);
        queue_.clear();
        queuePos_ = 0;
        if (eof_) return std::nullopt;
        std::string piece;
        bool more = false;
        try {
            more = conn_->readChunk(piece);
        } catch (const client::TransportError& e) {
            eof_ = true;
            rethrowTransport(e, operation_, true);
        }
        if (!more) {
            eof_ = true;
            if (auto last = parser_.finish()) queue_.push_back(std::move(*last));
            continue;
        }
        parser_.feed(piece, queue_);
    }
}

bool EventSource::nextRaw(std::string& out) {
    if (eof_) return false;
    try {
        if (conn_->readChunk(out)) return true;
    } catch (const client::TransportError& e) {
        eof_ = true;
        rethrowTransport(e, operation_, true);
    }
    eof_ = true;
    return false;
}

// ---- Requester ------------------------------------------------------------------------------

client::HeaderList Requester::headers(const client::HeaderList& extra) const {
    client::HeaderList h = s_.auth;
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
}

client::HttpResponse Requester::send(const client::Endpoint& ep, std::string_view method,
                                     const std::string& target, std::string_view body,
                                     const client::HeaderList& extra, const std::string& operation,
                                     bool idempotent,
                                     std::optional<std::chrono::milliseconds> ioTimeout) {
    const client::HeaderList h = headers(extra);
    try {
        return withRetry(s_.retry, idempotent, clock_, [&] {
            auto conn = pool_.acquire(ep);
            if (ioTimeout) conn->setIoTimeout(*ioTimeout);
            auto r = conn->request(method, target, body, h);
            if (ioTimeout) conn->setIoTimeout(pool_.settings().ioTimeout);
            pool_.release(std::move(conn));
            return r;
        });
    } catch (const client::TransportError& e) {
        rethrowTransport(e, operation, false);
    }
}

client::HttpResponse Requester::call(const client::Endpoint& ep, std::string_view method,
                                     const std::string& target, std::string_view body,
                                     const client::HeaderList& extra, const std::string& operation,
                                     bool idempotent,
                                     std::optional<std::chrono::milliseconds> ioTimeout) {
    auto r = send(ep, method, target, body, extra, operation, idempotent, ioTimeout);
    if (r.status < 200 || r.status >= 300) throwErrorFromResponse(r.status, r.body, operation);
    return r;
}

std::unique_ptr<EventSource> Requester::stream(const client::Endpoint& ep, std::string_view method,
                                               const std::string& target, std::string_view body,
                                               const client::HeaderList& extra,
                                               const std::string& operation,
                                               std::optional<std::chrono::milliseconds> idle) {
    auto conn = std::make_unique<client::HttpConnection>(ep, pool_.settings());
    client::HttpResponse head;
    try {
        head = conn->startStream(method, target, body, headers(extra));
    } catch (const client::TransportError& e) {
        rethrowTransport(e, operation, false);
    }
    if (head.status < 200 || head.status >= 300) {
        std::string text, piece;
        try {
            while (text.size() < (1 << 20) && conn->readChunk(piece)) text += piece;
        } catch (const client::TransportError&) {
        }
        throwErrorFromResponse(head.status, text, operation);
    }
    conn->setIoTimeout(idle.value_or(s_.streamIdleTimeout));
    auto src = std::make_unique<EventSource>(std::move(conn), operation);
    src->headers = std::move(head.headers);
    return src;
}

}  // namespace sandbox::detail
