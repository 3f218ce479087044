#pragma once
/// @file
/// An interactive terminal in a sandbox (`terminal()` of the TypeScript SDK): a shell on a real
/// pseudo-terminal, spoken to over a WebSocket (binary frames carry bytes, text frames JSON
/// control). Works over every transport: the container API's `/ws/pty`, and a bridge's
/// `/v1/sandbox/:id/pty` (Cloudflare's included).
///
/// ```cpp
/// auto pty = sb.terminal({.cols = 100, .rows = 30});
/// pty.write("echo hi; exit 3\n");
/// for (const std::string& chunk : pty) std::cout << chunk;   // output until the shell exits
/// int code = pty.exitCode().value_or(-1);                       // 3
/// ```
#include <chrono>
#include <cstddef>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace sandbox {

namespace detail {
struct PtyImpl;
}

/// Options of Sandbox::terminal() (`PtyOptions` in the TypeScript SDK). The size and shell
/// apply when the session's terminal is created; a later connection to the same session shares
/// the running terminal (use resize()).
struct PtyOptions {
    int cols = 80;      ///< columns
    int rows = 24;      ///< rows
    std::string shell;  ///< program to run; empty: the container's default (bash)
    /// How long to wait for the terminal to be ready.
    std::chrono::milliseconds readyTimeout{30'000};
};

/// A connected terminal. Move-only; destroying it (or close()) disconnects, and the shell keeps
/// running in its session: connecting again replays the recent output (256 KiB).
/// write() and resize() may be called from any thread while another thread reads.
class Pty {
  public:
    class iterator;

    Pty(Pty&&) noexcept;
    Pty& operator=(Pty&&) noexcept;
    ~Pty();

    /// The session the terminal belongs to.
    const std::string& sessionId() const;

    /// Sends bytes (keystrokes, UTF-8 text) to the terminal. Throws StreamLostError when the
    /// connection is gone.
    void write(std::string_view bytes);
    /// Changes the terminal size (the shell gets SIGWINCH). Throws ValidationFailedError for
    /// non-positive values.
    void resize(int cols, int rows);

    /// The next piece of output (the replay of earlier output comes first); nullopt once the
    /// shell exited (see exitCode()) or the connection closed.
    std::optional<std::string> read();
    /// As read(), waiting at most `timeout`; throws TimeoutError when nothing arrived.
    std::optional<std::string> read(std::chrono::milliseconds timeout);

    /// Output as a pull range: `for (const std::string& chunk : pty)`.
    iterator begin();
    std::default_sentinel_t end() { return {}; }

    /// Delivers output to `callback` on a background thread until the end (instead of read()).
    /// Call at most once; the thread stops when the terminal ends or on close(), and close()
    /// and the destructor wait for it, so what the callback uses must outlive this Pty.
    void onOutput(std::function<void(std::string_view)> callback);

    /// Waits for the end (output not yet read is dropped, unless onOutput() delivers it) and
    /// returns the shell's exit code; nullopt when the connection closed without one. Throws
    /// TimeoutError after `timeout`.
    std::optional<int> wait(std::optional<std::chrono::milliseconds> timeout = std::nullopt);

    /// The shell's exit code, once it exited (128+N for a signal).
    std::optional<int> exitCode() const;
    /// The signal that ended the shell ("SIGKILL"), if one did.
    std::optional<std::string> exitSignal() const;
    /// True once the terminal ended (exit or close).
    bool ended() const;
    /// Disconnects (the shell keeps running in its session). Idempotent.
    void close();

    /// Input iterator over output chunks.
    class iterator {
      public:
        using value_type = std::string;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        explicit iterator(Pty* p) : p_(p) { ++*this; }
        const std::string& operator*() const { return *cur_; }
        const std::string* operator->() const { return &*cur_; }
        iterator& operator++() {
            cur_ = p_->read();
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const { return !cur_; }

      private:
        Pty* p_ = nullptr;
        std::optional<std::string> cur_;
    };

  private:
    friend class SandboxOperations;
    explicit Pty(std::unique_ptr<detail::PtyImpl> impl);
    std::unique_ptr<detail::PtyImpl> impl_;
};

}  // namespace sandbox
