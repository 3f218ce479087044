// Sandbox::terminal(): the PTY WebSocket client.
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "client/client_impl.hpp"
#include "client/error_mapping.hpp"
#include "client/ws_client.hpp"
#include "core/text.hpp"
#include "core/wire_ws.hpp"
#include "sandbox/pty.hpp"

namespace sandbox {
namespace wire = core::wire;
using nlohmann::json;

namespace detail {

struct PtyImpl {
    std::unique_ptr<client::WebSocketClient> ws;
    std::string session;
    std::deque<std::string> early;  // output that arrived before `ready`

    mutable std::mutex m;  // guards what follows (read() runs on one thread at a time)
    std::condition_variable cv;
    std::optional<int> exitCode;
    std::optional<std::string> exitSignal;
    bool ended = false;
    std::string lastError;

    std::mutex readMutex;  // one reader at a time
    std::thread callbackThread;

    void markEnded() {
        std::lock_guard lock(m);
        ended = true;
        cv.notify_all();
    }

    // The next output chunk; nullopt at the end. Throws TimeoutError when `timeout` passes.
    std::optional<std::string> next(std::optional<std::chrono::milliseconds> timeout) {
        std::lock_guard rl(readMutex);
        if (!early.empty()) {
            std::string s = std::move(early.front());
            early.pop_front();
            return s;
        }
        auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                                : std::chrono::steady_clock::time_point::max();
        for (;;) {
            {
                std::lock_guard lock(m);
                if (ended) return std::nullopt;
            }
            client::WsMessage msg;
            std::optional<std::chrono::milliseconds> left;
            if (timeout)
                left = std::max(std::chrono::milliseconds(0),
                                std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now()));
            auto r = ws->read(msg, left);
            if (r == client::WebSocketClient::ReadResult::Timeout)
                throw TimeoutError("TIMEOUT", "no terminal output within the timeout", 0,
                                   json{{"operation", "terminal.read"}}, "terminal.read");
            if (r == client::WebSocketClient::ReadResult::Closed) {
                markEnded();
                return std::nullopt;
            }
            if (msg.binary) return std::move(msg.data);
            auto ctl = wire::parsePtyMessage(msg.data);
            if (!ctl) continue;
            if (ctl->type == "exit") {
                std::lock_guard lock(m);
                exitCode = ctl->code;
                exitSignal = ctl->signal;
            } else if (ctl->type == "error") {
                std::lock_guard lock(m);
                lastError = ctl->message.value_or("terminal error");
            }
        }
    }
};

}  // namespace detail

Pty::Pty(std::unique_ptr<detail::PtyImpl> impl) : impl_(std::move(impl)) {}
Pty::Pty(Pty&&) noexcept = default;
Pty& Pty::operator=(Pty&& o) noexcept {
    if (this != &o) {
        close();
        impl_ = std::move(o.impl_);
    }
    return *this;
}
Pty::~Pty() {
    close();
}

const std::string& Pty::sessionId() const {
    return impl_->session;
}

void Pty::write(std::string_view bytes) {
    try {
        impl_->ws->sendBinary(std::string(bytes));
    } catch (const client::TransportError& e) {
        detail::rethrowTransport(e, "terminal.write", true);
    }
}

void Pty::resize(int cols, int rows) {
    if (cols < 1 || rows < 1 || cols > 65535 || rows > 65535)
        throw ValidationFailedError(
            "VALIDATION_FAILED", "Invalid dimensions: cols and rows must be positive", 400,
            json{{"validationErrors", json::array({{{"field", "cols/rows"},
                                                    {"message", "must be between 1 and 65535"},
                                                    {"code", "INVALID_DIMENSIONS"}}})}},
            "terminal.resize");
    try {
        impl_->ws->sendText(wire::ptyResize(cols, rows));
    } catch (const client::TransportError& e) {
        detail::rethrowTransport(e, "terminal.resize", true);
    }
}

std::optional<std::string> Pty::read() try {
    return impl_->next(std::nullopt);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "read");
}

std::optional<std::string> Pty::read(std::chrono::milliseconds timeout) try {
    return impl_->next(timeout);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "read");
}

Pty::iterator Pty::begin() {
    return iterator(this);
}

void Pty::onOutput(std::function<void(std::string_view)> callback) {
    if (impl_->callbackThread.joinable())
        throw SandboxError("INVALID_REQUEST", "onOutput() was already called", 400, json::object(),
                           "terminal.onOutput");
    auto* impl = impl_.get();
    impl_->callbackThread = std::thread([impl, cb = std::move(callback)] {
        try {
            while (auto chunk = impl->next(std::nullopt)) cb(*chunk);
        } catch (...) {
            impl->markEnded();
        }
    });
}

std::optional<int> Pty::wait(std::optional<std::chrono::milliseconds> timeout) try {
    auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                            : std::chrono::steady_clock::time_point::max();
    if (impl_->callbackThread.joinable()) {
        std::unique_lock lock(impl_->m);
        if (!impl_->cv.wait_until(lock, deadline, [&] { return impl_->ended; }))
            throw TimeoutError("TIMEOUT", "the terminal did not end within the timeout", 0,
                               json{{"operation", "terminal.wait"}}, "terminal.wait");
        return impl_->exitCode;
    }
    for (;;) {
        std::optional<std::string> chunk;
        if (timeout) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            chunk = impl_->next(std::max(left, std::chrono::milliseconds(0)));
        } else {
            chunk = impl_->next(std::nullopt);
        }
        if (!chunk) break;
    }
    std::lock_guard lock(impl_->m);
    return impl_->exitCode;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "wait");
}

std::optional<int> Pty::exitCode() const {
    std::lock_guard lock(impl_->m);
    return impl_->exitCode;
}

std::optional<std::string> Pty::exitSignal() const {
    std::lock_guard lock(impl_->m);
    return impl_->exitSignal;
}

bool Pty::ended() const {
    std::lock_guard lock(impl_->m);
    return impl_->ended;
}

void Pty::close() {
    if (!impl_) return;
    impl_->ws->close(1000, "");
    if (impl_->callbackThread.joinable()) {
        if (impl_->callbackThread.get_id() == std::this_thread::get_id())
            impl_->callbackThread.detach();  // close() from inside the callback
        else
            impl_->callbackThread.join();
    }
}

Pty SandboxOperations::terminal(const PtyOptions& options) const try {
    if (options.cols < 1 || options.rows < 1 || options.cols > 65535 || options.rows > 65535)
        throw ValidationFailedError(
            "VALIDATION_FAILED", "Invalid dimensions: cols and rows must be positive", 400,
            json{{"validationErrors", json::array({{{"field", "cols/rows"},
                                                    {"message", "must be between 1 and 65535"},
                                                    {"code", "INVALID_DIMENSIONS"}}})}},
            "terminal");
    auto& st = *state_;
    auto impl = std::make_unique<detail::PtyImpl>();
    // A terminal always lives in a session: the bound one, else the default session (the
    // container creates it on first use).
    impl->session = session_ ? *session_ : st.info->defaultSessionId();
    std::string size =
        "cols=" + std::to_string(options.cols) + "&rows=" + std::to_string(options.rows);
    if (!options.shell.empty()) size += "&shell=" + core::queryEscape(options.shell);
    auto where = st.conn().terminal(impl->session, size);
    client::HttpSettings settings = st.client->requester->settings().http;
    try {
        impl->ws = std::make_unique<client::WebSocketClient>(where.endpoint, where.target,
                                                             where.headers, settings);
    } catch (const client::WsHandshakeError& e) {
        detail::throwErrorFromResponse(e.status(), e.body(), "terminal");
    } catch (const client::TransportError& e) {
        detail::rethrowTransport(e, "terminal", false);
    }
    // Wait for `ready`; output before it (the replay) is kept for read().
    auto deadline = std::chrono::steady_clock::now() + options.readyTimeout;
    for (;;) {
        client::WsMessage msg;
        auto left = std::max(std::chrono::milliseconds(0),
                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                 deadline - std::chrono::steady_clock::now()));
        auto r = impl->ws->read(msg, left);
        if (r == client::WebSocketClient::ReadResult::Timeout)
            throw TimeoutError("TIMEOUT", "the terminal was not ready within the timeout", 0,
                               json{{"operation", "terminal"}}, "terminal");
        if (r == client::WebSocketClient::ReadResult::Closed) {
            std::string why = impl->lastError.empty() ? impl->ws->closeReason() : impl->lastError;
            if (why.empty()) why = "the terminal connection closed before it was ready";
            throw SandboxError("INTERNAL_ERROR", why, 500,
                               json{{"closeCode", impl->ws->closeCode()}}, "terminal");
        }
        if (msg.binary) {
            impl->early.push_back(std::move(msg.data));
            continue;
        }
        auto ctl = wire::parsePtyMessage(msg.data);
        if (!ctl) continue;
        if (ctl->type == "ready") break;
        if (ctl->type == "error") impl->lastError = ctl->message.value_or("terminal error");
    }
    return Pty(std::move(impl));
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "terminal");
}

}  // namespace sandbox
