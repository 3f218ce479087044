#pragma once
// Single-threaded coroutine helpers for the servers: each runs its handlers on one io_context
// thread, so these need no locks.
#include <boost/asio.hpp>
#include <chrono>
#include <deque>
#include <memory>

namespace sandbox::server {

namespace net = boost::asio;
using net::awaitable;
using net::use_awaitable;

/// A one-shot event: wait() suspends until set() (or a deadline).
class Event {
  public:
    explicit Event(net::any_io_executor ex) : timer_(ex, net::steady_timer::time_point::max()) {}
    void set() {
        set_ = true;
        timer_.cancel();
    }
    bool isSet() const noexcept { return set_; }
    awaitable<void> wait() {
        while (!set_) {
            boost::system::error_code ec;
            timer_.expires_at(net::steady_timer::time_point::max());
            co_await timer_.async_wait(net::redirect_error(use_awaitable, ec));
        }
    }
    /// Returns true if set before `deadline`.
    awaitable<bool> waitUntil(std::chrono::steady_clock::time_point deadline) {
        while (!set_) {
            if (std::chrono::steady_clock::now() >= deadline) co_return false;
            boost::system::error_code ec;
            timer_.expires_at(deadline);
            co_await timer_.async_wait(net::redirect_error(use_awaitable, ec));
        }
        co_return true;
    }

  private:
    net::steady_timer timer_;
    bool set_ = false;
};

/// A fair asynchronous mutex.
class AsyncMutex {
  public:
    explicit AsyncMutex(net::any_io_executor ex) : ex_(ex) {}
    awaitable<void> lock() {
        if (!locked_) {
            locked_ = true;
            co_return;
        }
        auto ev = std::make_shared<Event>(ex_);
        waiters_.push_back(ev);
        co_await ev->wait();  // ownership is handed over by unlock()
    }
    void unlock() {
        if (waiters_.empty()) {
            locked_ = false;
            return;
        }
        auto ev = waiters_.front();
        waiters_.pop_front();
        ev->set();
    }
    bool locked() const noexcept { return locked_; }

  private:
    net::any_io_executor ex_;
    std::deque<std::shared_ptr<Event>> waiters_;
    bool locked_ = false;
};

/// RAII ownership of an AsyncMutex acquired with `co_await LockGuard::acquire(m)`.
class LockGuard {
  public:
    static awaitable<LockGuard> acquire(AsyncMutex& m) {
        co_await m.lock();
        co_return LockGuard(&m);
    }
    LockGuard(LockGuard&& o) noexcept : m_(std::exchange(o.m_, nullptr)) {}
    LockGuard& operator=(LockGuard&&) = delete;
    ~LockGuard() {
        if (m_) m_->unlock();
    }
    void release() {
        if (m_) std::exchange(m_, nullptr)->unlock();
    }

  private:
    explicit LockGuard(AsyncMutex* m) : m_(m) {}
    AsyncMutex* m_;
};

}  // namespace sandbox::server
