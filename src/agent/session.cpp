#include "agent/session.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

#include "core/shell.hpp"

namespace sandbox::agent {
namespace {

// Descriptor number of the control pipe (status lines) inside the shell. High enough that user
// scripts do not stumble on it; closed for every user command.
constexpr int kControlFd = 60;
constexpr const char* kCloseOurs = " 60>&-";

net::posix::stream_descriptor adopt(net::any_io_executor ex, Fd fd) {
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) | O_NONBLOCK);
    return net::posix::stream_descriptor(ex, fd.release());
}

}  // namespace

Session::Session(net::any_io_executor ex, Options opts)
    : ex_(ex), opts_(std::move(opts)), stdin_(ex), control_(ex), pidfd_(ex), mutex_(ex) {}

Session::~Session() {
    if (alive_) destroy();
}

std::shared_ptr<Session> Session::spawn(net::any_io_executor ex, Options opts) {
    if (!isDirectory(opts.cwd)) {
        const char* home = std::getenv("HOME");
        opts.cwd = home && isDirectory(home) ? home : "/";
    }
    auto s = std::shared_ptr<Session>(new Session(ex, std::move(opts)));
    Pipe in = Pipe::make(false), control = Pipe::make();
    Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));

    std::vector<std::pair<std::string, std::optional<std::string>>> overrides;
    for (const auto& [k, v] : s->opts_.env) overrides.emplace_back(k, v);
    overrides.emplace_back("LANG", "C.UTF-8");
    overrides.emplace_back("LC_ALL", "C.UTF-8");

    SpawnOptions so;
    so.argv = {"/bin/bash", "--norc", "--noprofile"};
    so.env = environWith(overrides);
    so.cwd = s->opts_.cwd;
    so.fds = {{0, in.read.get()},
              {1, devnull.get()},
              {2, devnull.get()},
              {kControlFd, control.write.get()}};
    so.newProcessGroup = true;
    s->pid_ = spawnProcess(so);
    s->pidfd_ = net::posix::stream_descriptor(ex, openPidFd(s->pid_).release());
    s->stdin_ = adopt(ex, std::move(in.write));
    s->control_ = adopt(ex, std::move(control.read));

    net::co_spawn(
        ex, [s]() -> awaitable<void> { co_await s->controlLoop(); }, net::detached);
    net::co_spawn(
        ex, [s]() -> awaitable<void> { co_await s->deathLoop(); }, net::detached);
    return s;
}

std::string Session::currentDir() const {
    char buf[4096];
    std::string link = "/proc/" + std::to_string(pid_) + "/cwd";
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n <= 0) return opts_.cwd;
    std::string dir(buf, static_cast<size_t>(n));
    // A deleted directory reads as "/path (deleted)".
    if (dir.ends_with(" (deleted)")) dir.resize(dir.size() - 10);
    return dir;
}

awaitable<void> Session::controlLoop() {
    char buf[256];
    for (;;) {
        boost::system::error_code ec;
        std::size_t n = co_await control_.async_read_some(net::buffer(buf),
                                                          net::redirect_error(use_awaitable, ec));
        if (ec) break;
        controlBuf_.append(buf, n);
        std::size_t nl;
        while ((nl = controlBuf_.find('\n')) != std::string::npos) {
            std::string line = controlBuf_.substr(0, nl);
            controlBuf_.erase(0, nl + 1);
            if (line.size() < 3 || !pending_) continue;
            long value = std::strtol(line.c_str() + 2, nullptr, 10);
            if (line[0] == 'S') {
                // All output the command wrote is in the pipes now: take it before completing.
                if (out_) out_->drain();
                if (err_) err_->drain();
                pending_->status = static_cast<int>(value);
                pending_->done.set();
            } else if (line[0] == 'B') {
                pending_->bgPid = static_cast<pid_t>(value);
                pending_->done.set();
            }
        }
    }
}

Session::Capture::Capture(net::any_io_executor ex, Fd fd) : pipe(adopt(ex, std::move(fd))) {}

bool Session::Capture::drain() {
    std::string scratch;
    auto [eof, lost] = drainFd(pipe.native_handle(), target ? *target : scratch,
                               target ? kMaxForegroundOutput : 0);
    if (target) dropped += lost;
    return eof;
}

awaitable<void> Session::outputLoop(std::shared_ptr<Capture> c) {
    for (;;) {
        if (c->drain()) break;
        boost::system::error_code ec;
        co_await c->pipe.async_wait(net::posix::descriptor_base::wait_read,
                                    net::redirect_error(use_awaitable, ec));
        if (ec && ec != net::error::operation_aborted) break;
    }
}

awaitable<void> Session::deathLoop() {
    for (;;) {
        boost::system::error_code ec;
        co_await pidfd_.async_wait(net::posix::descriptor_base::wait_read,
                                   net::redirect_error(use_awaitable, ec));
        if (auto code = reapExitCode(pid_)) {
            onShellGone(*code);
            co_return;
        }
        if (ec && ec != net::error::operation_aborted) co_return;
    }
}

void Session::onShellGone(int code) {
    if (!alive_ && shellExit_) return;
    alive_ = false;
    shellExit_ = code;
    if (out_) out_->drain();
    if (err_) err_->drain();
    if (pending_) pending_->done.set();
    boost::system::error_code ec;
    stdin_.close(ec);
}

awaitable<bool> Session::writeToShell(const std::string& text) {
    // A command may have stopped every process of the sandbox but the agent (`kill -STOP -1`),
    // this shell included: it runs again for the next command rather than leave it waiting.
    ::kill(pid_, SIGCONT);
    boost::system::error_code ec;
    co_await net::async_write(stdin_, net::buffer(text), net::redirect_error(use_awaitable, ec));
    co_return !ec;
}

std::string Session::envPrologue(const core::wire::EnvMap& env, std::string& epilogue) {
    std::string pro;
    int i = 0;
    for (const auto& [k, v] : env) {
        if (!v) continue;
        std::string save = "__sb_o" + std::to_string(i), had = "__sb_h" + std::to_string(i);
        ++i;
        pro += "if [[ -v " + k + " ]]; then " + save + "=\"$" + k + "\"; " + had + "=1; else " +
               had + "=; fi; export " + k + "=" + core::shellQuote(*v) + "; ";
        epilogue += "if [[ -n $" + had + " ]]; then export " + k + "=\"$" + save +
                    "\"; else unset " + k + "; fi; unset " + save + " " + had + "; ";
    }
    return pro;
}

awaitable<ForegroundResult> Session::exec(const CommandSpec& spec,
                                          std::optional<std::chrono::milliseconds> timeout) {
    ForegroundResult result;
    if (!alive_) {
        result.outcome = destroyed_ ? ForegroundResult::Outcome::Destroyed
                                    : ForegroundResult::Outcome::ShellExited;
        result.exitCode = shellExit_.value_or(-1);
        co_return result;
    }
    // Fresh capture pipes, which the shell opens by name for the command. (Named, not
    // /proc/<agent>/fd/N: the agent of a sandbox is not dumpable, so nothing can open its
    // descriptors.) Our write ends (`keep`) close when this returns.
    NamedPipe outPipe = NamedPipe::make(opts_.runtimeDir),
              errPipe = NamedPipe::make(opts_.runtimeDir);
    std::string outPath = core::shellQuote(outPipe.path()),
                errPath = core::shellQuote(errPipe.path());
    std::string epilogue;
    std::string line = "IFS= read -r -d '' __sb_c; ";
    std::string run = envPrologue(spec.env, epilogue) + "eval \"$__sb_c\" </dev/null >" + outPath +
                      " 2>" + errPath + kCloseOurs + "; __sb_s=$?; " + epilogue;
    if (spec.cwd) {
        std::string msg = "Failed to change directory to '" + *spec.cwd + "'";
        line += "__sb_d=\"$PWD\"; if builtin cd -- " + core::shellQuote(*spec.cwd) +
                " 2>/dev/null; then " + run +
                "builtin cd -- \"$__sb_d\" 2>/dev/null; else printf '%s\\n' " +
                core::shellQuote(msg) + " >" + errPath + "; __sb_s=1; fi; ";
    } else {
        line += run;
    }
    line += "printf 'S %d\\n' \"$__sb_s\" >&60\n";
    line += spec.command;
    line.push_back('\0');

    auto self = shared_from_this();  // before `reset`, which still uses the session when it ends
    auto pending = std::make_shared<Pending>(ex_);
    pending_ = pending;
    out_ = std::make_shared<Capture>(ex_, std::move(outPipe.read));
    err_ = std::make_shared<Capture>(ex_, std::move(errPipe.read));
    out_->target = &result.stdoutRaw;
    err_->target = &result.stderrRaw;
    net::co_spawn(ex_, outputLoop(out_), net::detached);
    net::co_spawn(ex_, outputLoop(err_), net::detached);
    struct Reset {
        Session* s;
        ~Reset() {
            s->pending_.reset();
            // From now on the loops discard what jobs of this command still write.
            s->out_->target = s->err_->target = nullptr;
            s->out_.reset();
            s->err_.reset();
        }
    } reset{this};

    bool written = co_await writeToShell(line);
    if (written) {
        auto deadline = timeout ? std::chrono::steady_clock::now() + *timeout
                                : std::chrono::steady_clock::time_point::max();
        if (!co_await pending->done.waitUntil(deadline)) {
            // Timed out: stop what the command started; if the shell itself is busy (a builtin
            // loop), the shell has to go too.
            result.outcome = ForegroundResult::Outcome::TimedOut;
            signalTree(pid_, SIGTERM, false);
            if (!co_await pending->done.waitUntil(std::chrono::steady_clock::now() +
                                                  std::chrono::seconds(2))) {
                signalTree(pid_, SIGKILL, false);
                if (!co_await pending->done.waitUntil(std::chrono::steady_clock::now() +
                                                      std::chrono::milliseconds(500))) {
                    signalTree(pid_, SIGKILL, true);
                    co_await pending->done.wait();
                }
            }
        }
    } else {
        co_await pending->done.waitUntil(std::chrono::steady_clock::now() +
                                         std::chrono::seconds(5));
    }
    if (result.outcome != ForegroundResult::Outcome::TimedOut) {
        if (pending->status) {
            result.exitCode = *pending->status;
        } else {
            result.outcome = destroyed_ ? ForegroundResult::Outcome::Destroyed
                                        : ForegroundResult::Outcome::ShellExited;
            result.exitCode = shellExit_.value_or(-1);
        }
    }
    if (out_->dropped)
        result.stdoutRaw +=
            "\n[output truncated: " + std::to_string(out_->dropped) + " bytes dropped]\n";
    if (err_->dropped)
        result.stderrRaw +=
            "\n[output truncated: " + std::to_string(err_->dropped) + " bytes dropped]\n";
    co_return result;
}

awaitable<std::shared_ptr<RunningCommand>> Session::startBackground(const CommandSpec& spec) {
    if (!alive_) co_return nullptr;
    NamedPipe out = NamedPipe::make(opts_.runtimeDir), err = NamedPipe::make(opts_.runtimeDir),
              status = NamedPipe::make(opts_.runtimeDir);
    std::string pre;
    if (spec.cwd) {
        std::string msg = "Failed to change directory to '" + *spec.cwd + "'";
        pre += "builtin cd -- " + core::shellQuote(*spec.cwd) +
               " 2>/dev/null || { printf '%s\\n' " + core::shellQuote(msg) +
               " >&2; printf '1\\n' >&63; exit 1; }; ";
    }
    for (const auto& [k, v] : spec.env)
        if (v) pre += "export " + k + "=" + core::shellQuote(*v) + "; ";
    // An asynchronous list starts with SIGINT and SIGQUIT ignored (no job control): restore
    // them, so the command can be interrupted as one started any other way.
    std::string line =
        "IFS= read -r -d '' __sb_c; { printf 'B %d\\n' \"$BASHPID\" >&60; "
        "trap - INT QUIT; exec" +
        std::string(kCloseOurs) + "; " + pre +
        "(eval \"$__sb_c\") 63>&-; printf '%d\\n' \"$?\" >&63; } </dev/null >" +
        core::shellQuote(out.path()) + " 2>" + core::shellQuote(err.path()) + " 63>" +
        core::shellQuote(status.path()) + " &\n";
    line += spec.command;
    line.push_back('\0');

    auto pending = std::make_shared<Pending>(ex_);
    pending_ = pending;
    bool written = co_await writeToShell(line);
    if (written)
        co_await pending->done.waitUntil(std::chrono::steady_clock::now() +
                                         std::chrono::seconds(10));
    pending_.reset();
    if (!pending->bgPid) co_return nullptr;
    // The subshell has opened its ends; ours close (and the names go) at scope exit.
    auto rc = std::make_shared<RunningCommand>(ex_, *pending->bgPid, std::move(out.read),
                                               std::move(err.read), std::move(status.read),
                                               RunningCommand::ExitSource::StatusPipe);
    rc->start();
    if (background_.size() >= 64)
        std::erase_if(background_, [](const auto& w) { return w.expired(); });
    background_.push_back(rc);
    co_return rc;
}

void Session::destroy() {
    if (destroyed_) return;
    destroyed_ = true;
    for (auto& w : background_)
        if (auto rc = w.lock()) rc->kill(std::chrono::milliseconds(0));
    background_.clear();
    // pid_ is -1 when spawn() failed: signalling -1 would reach every process we may signal.
    if (alive_ && pid_ > 0) signalTree(pid_, SIGKILL, true);
    alive_ = false;
    // Jobs whose parent subshell already exited (`(cmd &)`) left the tree but not the shell's
    // process group (no job control, so every job stays in it).
    if (pid_ > 0) ::kill(-pid_, SIGKILL);
    if (pending_) pending_->done.set();
}

}  // namespace sandbox::agent
