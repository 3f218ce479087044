#include "agent/pty.hpp"

#include <fcntl.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <deque>
#include <system_error>

#include "core/wire_ws.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using server::WebSocket;

namespace {

// The newest output of a terminal, for a client that reconnects. Trimmed in amortised steps: the
// buffer may reach twice the limit before the oldest part is dropped.
class ReplayBuffer {
  public:
    explicit ReplayBuffer(std::size_t limit) : limit_(limit) {}
    void append(std::string_view bytes) {
        data_.append(bytes);
        if (data_.size() > 2 * limit_) data_.erase(0, data_.size() - limit_);
    }
    /// The newest `limit` bytes.
    std::string_view view() const {
        std::string_view v(data_);
        return v.size() > limit_ ? v.substr(v.size() - limit_) : v;
    }

  private:
    std::size_t limit_;
    std::string data_;
};

// Flow control: while a connection has more than this much output unsent, the terminal is not
// read (the shell blocks on its writes, as on a real terminal).
constexpr std::size_t kClientHighWater = 1024 * 1024;
// A connection that stays behind this long is closed (1008) so the others are not held up.
constexpr auto kSlowClientGrace = std::chrono::seconds(30);
// Hard bound on a connection's unsent output.
constexpr std::size_t kMaxClientBacklog = 8 * 1024 * 1024;

// parseInt-like: the leading integer of the value; `fallback` when absent or not a number.
int leadingInt(const std::optional<std::string>& v, int fallback) {
    if (!v) return fallback;
    const char* s = v->c_str();
    while (*s == ' ' || *s == '\t') ++s;
    char* end = nullptr;
    long n = std::strtol(s, &end, 10);
    if (end == s || n > 100000 || n < -100000) return fallback;
    return static_cast<int>(n);
}
}  // namespace

class Terminal : public std::enable_shared_from_this<Terminal> {
  public:
    Terminal(net::any_io_executor ex, pid_t pid, int master, Fd pidfd)
        : pid_(pid), master_(ex, master), pidfd_(ex, pidfd.release()) {}
    ~Terminal() { kill(SIGKILL); }

    /// Forks `argv[0]` on a new pseudo-terminal. Throws std::system_error.
    static std::shared_ptr<Terminal> spawn(net::any_io_executor ex,
                                           const std::vector<std::string>& argv,
                                           const std::vector<std::string>& env,
                                           const std::string& cwd, int cols, int rows) {
        std::vector<char*> cargv, cenv;
        for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
        cargv.push_back(nullptr);
        for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
        cenv.push_back(nullptr);
        winsize ws{};
        ws.ws_col = static_cast<unsigned short>(cols);
        ws.ws_row = static_cast<unsigned short>(rows);
        int master = -1;
        pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
        if (pid < 0) throw std::system_error(errno, std::generic_category(), "forkpty");
        if (pid == 0) {
            // The child: only async-signal-safe calls from here to exec.
            ::signal(SIGPIPE, SIG_DFL);
            sigset_t none;
            sigemptyset(&none);
            ::sigprocmask(SIG_SETMASK, &none, nullptr);
            ::syscall(SYS_close_range, 3u, ~0u, 0u);
            if (::chdir(cwd.c_str()) != 0 && ::chdir("/") != 0) _exit(126);
            ::execvpe(cargv[0], cargv.data(), cenv.data());
            const char msg[] = "cannot start the shell\r\n";
            ssize_t ignored = ::write(2, msg, sizeof msg - 1);
            (void)ignored;
            _exit(127);
        }
        // Ours to reap (with its exit code), not the orphan reaper's: registered before the event
        // loop runs again, so a SIGCHLD cannot come first.
        adoptChild(pid);
        ::fcntl(master, F_SETFD, FD_CLOEXEC);
        ::fcntl(master, F_SETFL, ::fcntl(master, F_GETFL) | O_NONBLOCK);
        Fd pidfd;
        try {
            pidfd = openPidFd(pid);
        } catch (...) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            forgetChild(pid);
            ::close(master);
            throw;
        }
        return std::make_shared<Terminal>(ex, pid, master, std::move(pidfd));
    }

    void start() {
        auto self = shared_from_this();
        net::co_spawn(
            master_.get_executor(), [self]() -> awaitable<void> { co_await self->outputLoop(); },
            net::detached);
        net::co_spawn(
            master_.get_executor(), [self]() -> awaitable<void> { co_await self->exitLoop(); },
            net::detached);
    }

    std::string_view replay() const { return log_.view(); }
    bool finished() const { return finished_ || exit_.has_value(); }
    std::weak_ptr<Session> session;

    void subscribe(std::shared_ptr<WebSocket> ws) {
        if (finished_) {
            ws->sendText(wire::ptyExit(*exit_, signal_));
            ws->close(1000, "exit");
            return;
        }
        subs_.push_back(std::move(ws));
    }
    void unsubscribe(const std::shared_ptr<WebSocket>& ws) { std::erase(subs_, ws); }

    void write(std::string bytes) {
        if (finished()) return;
        input_.push_back(std::move(bytes));
        if (writing_) return;
        writing_ = true;
        auto self = shared_from_this();
        net::co_spawn(
            master_.get_executor(), [self]() -> awaitable<void> { co_await self->inputLoop(); },
            net::detached);
    }

    bool resize(int cols, int rows) {
        if (finished()) return false;
        winsize ws{};
        ws.ws_col = static_cast<unsigned short>(cols);
        ws.ws_row = static_cast<unsigned short>(rows);
        return ::ioctl(master_.native_handle(), TIOCSWINSZ, &ws) == 0;
    }

    /// Signals the shell's process group (the shell is a session leader: its pgid is its pid).
    void kill(int sig) {
        if (!reaped_) ::kill(-pid_, sig), ::kill(pid_, sig);
    }

  private:
    void onOutput(std::string_view bytes) {
        log_.append(bytes);
        for (auto it = subs_.begin(); it != subs_.end();) {
            auto& ws = *it;
            if (!ws->isOpen()) {
                it = subs_.erase(it);
                continue;
            }
            if (ws->buffered() > kMaxClientBacklog) {
                ws->close(1008, "Client too slow");
                it = subs_.erase(it);
                continue;
            }
            ws->sendBinary(std::string(bytes));
            ++it;
        }
    }

    awaitable<void> outputLoop() {
        std::string buf(64 * 1024, '\0');
        for (;;) {
            if (exit_) break;  // the shell is gone: drain below, do not wait on its children
            co_await waitForReaders();
            if (exit_) break;
            boost::system::error_code ec;
            std::size_t n = co_await master_.async_read_some(
                net::buffer(buf), net::redirect_error(use_awaitable, ec));
            if (n > 0) onOutput(std::string_view(buf.data(), n));
            if (ec) break;  // EIO: every slave end closed; operation_aborted: exit seen
        }
        if (master_.is_open()) {
            std::string rest;
            drainFd(master_.native_handle(), rest, 16 * 1024 * 1024);
            if (!rest.empty()) onOutput(rest);
        }
        outputEnded_ = true;
        maybeFinish();
    }

    // Waits while a connection is behind; one that stays behind past the grace is closed.
    awaitable<void> waitForReaders() {
        auto subs = subs_;
        for (auto& ws : subs) {
            if (!ws->isOpen() || ws->buffered() <= kClientHighWater) continue;
            const auto deadline = std::chrono::steady_clock::now() + kSlowClientGrace;
            const std::size_t low = kClientHighWater / 2;
            bool ok = co_await ws->waitBelow(low, deadline);
            if (!ok && ws->isOpen()) {
                ws->close(1008, "Client too slow");
                unsubscribe(ws);
            }
        }
    }

    awaitable<void> exitLoop() {
        boost::system::error_code ec;
        co_await pidfd_.async_wait(net::posix::descriptor_base::wait_read,
                                   net::redirect_error(use_awaitable, ec));
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, 0);
        forgetChild(pid_);
        reaped_ = true;
        int code = -1;
        if (r == pid_ && WIFEXITED(status)) code = WEXITSTATUS(status);
        if (r == pid_ && WIFSIGNALED(status)) {
            code = 128 + WTERMSIG(status);
            if (const char* abbrev = ::sigabbrev_np(WTERMSIG(status)))
                signal_ = std::string("SIG") + abbrev;
        }
        exit_ = code;
        boost::system::error_code ignored;
        master_.cancel(ignored);
        maybeFinish();
    }

    awaitable<void> inputLoop() {
        while (!input_.empty() && !finished()) {
            std::string bytes = std::move(input_.front());
            input_.pop_front();
            boost::system::error_code ec;
            co_await net::async_write(master_, net::buffer(bytes),
                                      net::redirect_error(use_awaitable, ec));
            if (ec) break;
        }
        input_.clear();
        writing_ = false;
    }

    void maybeFinish() {
        if (finished_ || !exit_ || !outputEnded_) return;
        finished_ = true;
        std::string frame = wire::ptyExit(*exit_, signal_);
        for (auto& ws : subs_) {
            ws->sendText(frame);
            ws->close(1000, "exit");
        }
        subs_.clear();
        ::kill(-pid_, SIGHUP);  // jobs the shell left on the terminal
        boost::system::error_code ignored;
        master_.close(ignored);
    }

    pid_t pid_;
    net::posix::stream_descriptor master_, pidfd_;
    ReplayBuffer log_{wire::kPtyReplayBytes};
    std::vector<std::shared_ptr<WebSocket>> subs_;
    std::deque<std::string> input_;
    std::optional<int> exit_;
    std::optional<std::string> signal_;
    bool writing_ = false, outputEnded_ = false, finished_ = false, reaped_ = false;
};

PtyHub::PtyHub(Agent& agent) : agent_(agent) {}

PtyHub::~PtyHub() {
    for (auto& [id, t] : terminals_) t->kill(SIGKILL);
}

void PtyHub::destroy(const std::string& sessionId) {
    auto it = terminals_.find(sessionId);
    if (it == terminals_.end()) return;
    it->second->kill(SIGKILL);  // the exit watcher tells the connections (code 137)
    terminals_.erase(it);
}

awaitable<std::shared_ptr<Terminal>> PtyHub::terminalFor(const std::string& sessionId, int cols,
                                                         int rows, const std::string& shell) {
    auto session = agent_.session(sessionId);
    auto usable = [&](const std::shared_ptr<Terminal>& t) {
        return t && !t->finished() && t->session.lock() == session;
    };
    if (auto it = terminals_.find(sessionId); it != terminals_.end() && usable(it->second))
        co_return it->second;
    auto guard = co_await LockGuard::acquire(session->mutex());
    if (auto it = terminals_.find(sessionId); it != terminals_.end() && usable(it->second))
        co_return it->second;
    // The session's exported variables and directory, as they are now.
    CommandSpec spec{"env -0", {}, std::nullopt};
    std::optional<std::chrono::milliseconds> timeout = std::chrono::seconds(30);
    ForegroundResult snap = co_await session->exec(spec, timeout);
    if (snap.outcome != ForegroundResult::Outcome::Exited || snap.exitCode != 0)
        throw std::runtime_error("cannot read the environment of session '" + sessionId + "'");
    std::vector<std::pair<std::string, std::optional<std::string>>> overrides;
    std::string_view all(snap.stdoutRaw);
    while (!all.empty()) {
        auto nul = all.find('\0');
        std::string_view kv = all.substr(0, nul);
        all.remove_prefix(nul == std::string_view::npos ? all.size() : nul + 1);
        auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        std::string name(kv.substr(0, eq));
        if (name.rfind("__sb_", 0) == 0) continue;  // the session driver's own
        overrides.emplace_back(name, std::string(kv.substr(eq + 1)));
    }
    overrides.emplace_back("TERM", "xterm-256color");
    overrides.emplace_back("PROMPT_COMMAND", "clear; unset PROMPT_COMMAND");
    std::vector<std::string> argv{shell.empty() ? std::string("bash") : shell};
    auto env = environWith(overrides);
    auto t = Terminal::spawn(agent_.executor(), argv, env, session->currentDir(), cols, rows);
    t->session = session;
    if (auto old = terminals_.find(sessionId); old != terminals_.end()) old->second->kill(SIGKILL);
    terminals_[sessionId] = t;
    t->start();
    co_return t;
}

awaitable<void> PtyHub::serve(server::Request& req, server::Responder& res, std::string sessionId) {
    auto self = shared_from_this();
    int cols = leadingInt(req.queryParam("cols"), wire::kPtyDefaultCols);
    int rows = leadingInt(req.queryParam("rows"), wire::kPtyDefaultRows);
    if (cols <= 0) cols = wire::kPtyDefaultCols;
    if (rows <= 0) rows = wire::kPtyDefaultRows;
    std::string shell = req.queryParam("shell").value_or("");
    std::shared_ptr<WebSocket> ws = co_await res.acceptWebSocket();

    std::shared_ptr<Terminal> term;
    std::string failure;
    try {
        term = co_await terminalFor(sessionId, cols, rows, shell);
    } catch (const std::exception& e) {
        failure = std::string("Failed to create PTY: ") + e.what();
    }
    if (!term) {
        ws->sendText(wire::ptyError(failure));
        ws->close(1011, failure.substr(0, 120));
        co_await ws->drain();
        co_return;
    }
    auto replay = term->replay();
    if (!replay.empty()) ws->sendBinary(std::string(replay));
    ws->sendText(wire::ptyReady());
    term->subscribe(ws);

    for (;;) {
        WebSocket::Message msg;
        bool ok = co_await ws->read(msg);
        if (!ok) break;
        if (msg.binary) {
            term->write(std::move(msg.data));
            continue;
        }
        auto ctl = wire::parsePtyMessage(msg.data);
        if (!ctl) {
            ws->sendText(wire::ptyError("Invalid control message"));
            continue;
        }
        if (ctl->type != "resize") continue;  // unknown types are ignored
        if (!ctl->cols || !ctl->rows || *ctl->cols < 1 || *ctl->rows < 1 || *ctl->cols > 65535 ||
            *ctl->rows > 65535) {
            ws->sendText(wire::ptyError("Invalid dimensions: cols and rows must be positive"));
            continue;
        }
        term->resize(static_cast<int>(*ctl->cols), static_cast<int>(*ctl->rows));
    }
    term->unsubscribe(ws);
}

}  // namespace sandbox::agent
