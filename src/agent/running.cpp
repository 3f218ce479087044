#include "agent/running.hpp"

#include <signal.h>
#include <unistd.h>

#include "agent/processes.hpp"

namespace sandbox::agent {

RunningCommand::RunningCommand(net::any_io_executor ex, pid_t pid, Fd out, Fd err, Fd exitFd,
                               ExitSource src)
    : ex_(ex),
      pid_(pid),
      out_(ex, out.release()),
      err_(ex, err.release()),
      exit_(ex, exitFd.release()),
      exitSource_(src),
      channel_(ex, 16),
      readersDone_(ex),
      timeoutTimer_(ex),
      killTimer_(ex) {}

RunningCommand::~RunningCommand() {
    boost::system::error_code ec;
    out_.close(ec);
    err_.close(ec);
    exit_.close(ec);
}

void RunningCommand::start() {
    auto self = shared_from_this();
    net::co_spawn(
        ex_,
        [self]() -> awaitable<void> { co_await self->readLoop(self->out_, OutputChunk::Stdout); },
        net::detached);
    net::co_spawn(
        ex_,
        [self]() -> awaitable<void> { co_await self->readLoop(self->err_, OutputChunk::Stderr); },
        net::detached);
    net::co_spawn(
        ex_, [self]() -> awaitable<void> { co_await self->exitLoop(); }, net::detached);
}

awaitable<void> RunningCommand::deliver(OutputChunk&& chunk) {
    if (discard_) co_return;
    boost::system::error_code ec;
    co_await channel_.async_send(ec, std::move(chunk), net::redirect_error(use_awaitable, ec));
}

awaitable<void> RunningCommand::readLoop(net::posix::stream_descriptor& d, OutputChunk::Kind kind) {
    std::string buf;
    bool counted = false;  // this reader has reported "drained" to exitLoop
    auto drained = [&] {
        if (!counted && --readersLeft_ == 0) readersDone_.set();
        counted = true;
    };
    for (;;) {
        buf.resize(65536);
        ssize_t n = ::read(d.native_handle(), buf.data(), buf.size());
        if (n > 0) {
            if (counted) continue;  // after the exit: a background child's output, dropped
            buf.resize(static_cast<size_t>(n));
            OutputChunk chunk{kind, std::move(buf), std::nullopt};
            co_await deliver(std::move(chunk));
            buf = std::string();
            continue;
        }
        if (n == 0) break;  // every writer closed it
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        // The command is done and what it wrote is drained. Children it left behind may still
        // hold the pipe: keep reading (and dropping) until they close it, so they neither block
        // on a full pipe nor die of SIGPIPE; the descriptor is released at end of file.
        if (exited_) drained();
        boost::system::error_code ec;
        co_await d.async_wait(net::posix::descriptor_base::wait_read,
                              net::redirect_error(use_awaitable, ec));
        if (ec && ec != net::error::operation_aborted) break;
    }
    drained();
    boost::system::error_code ec;
    d.close(ec);
}

awaitable<void> RunningCommand::exitLoop() {
    std::optional<int> code;
    if (exitSource_ == ExitSource::StatusPipe) {
        std::string status;
        for (;;) {
            boost::system::error_code ec;
            char buf[64];
            std::size_t n = co_await exit_.async_read_some(net::buffer(buf),
                                                           net::redirect_error(use_awaitable, ec));
            status.append(buf, n);
            if (ec || status.find('\n') != std::string::npos) break;
        }
        if (auto nl = status.find('\n'); nl != std::string::npos) {
            try {
                code = std::stoi(status.substr(0, nl));
            } catch (...) {
            }
        }
    } else {
        for (;;) {
            boost::system::error_code ec;
            co_await exit_.async_wait(net::posix::descriptor_base::wait_read,
                                      net::redirect_error(use_awaitable, ec));
            if (auto c = reapExitCode(pid_)) {
                code = *c >= 0 ? std::optional<int>(*c) : std::nullopt;
                break;
            }
            if (ec && ec != net::error::operation_aborted) break;
        }
    }
    if (!code && lastSignal_) code = 128 + lastSignal_;
    exited_ = true;
    timeoutTimer_.cancel();
    // Wake the readers so they drain what is left and finish.
    boost::system::error_code ec;
    out_.cancel(ec);
    err_.cancel(ec);
    co_await readersDone_.wait();
    finished_ = true;
    // The exit descriptor is done with; the output pipes close themselves once every writer
    // (including children the command left behind) has gone. A pending kill escalation still
    // runs: descendants may have outlived the leader.
    exit_.close(ec);
    OutputChunk last{OutputChunk::Exit, {}, code};
    co_await deliver(std::move(last));
}

awaitable<bool> RunningCommand::next(OutputChunk& out) {
    if (exitTaken_) co_return false;
    boost::system::error_code ec;
    out = co_await channel_.async_receive(net::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
    if (out.kind == OutputChunk::Exit) exitTaken_ = true;
    co_return true;
}

void RunningCommand::discard() {
    discard_ = true;
    // Unblock a reader waiting in async_send: drain the channel.
    channel_.reset();
}

void RunningCommand::setTag(std::string tag) {
    tree_.assign(1, TreeSpec{pid_, std::move(tag), {}});
}

void RunningCommand::signalNow(int sig) {
    lastSignal_ = sig;
    if (!tree_.empty()) {
        // While the leader has not finished its pid is ours to address; the tag (and the
        // members seen before) find the rest.
        tree_.front().root = finished_ ? 0 : pid_;
        signalProcessTrees(tree_, sig);
    } else
        signalTree(pid_, sig, true);
    // A command the agent spawned leads its own process group: catch members that left the
    // tree (double fork) but not the group.
    if (exitSource_ == ExitSource::PidFd) ::kill(-pid_, sig);
}

void RunningCommand::kill(std::chrono::milliseconds grace) {
    if (exited_) return;
    signalNow(SIGTERM);
    killTimer_.expires_after(grace);
    killTimer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (ec) return;
        if (self->finished_) {
            // The leader is gone (and may be reaped, its pid reusable): only its process group,
            // which a survivor of our own spawn keeps, and its tag are still safe to address.
            if (self->exitSource_ == ExitSource::PidFd) ::kill(-self->pid_, SIGKILL);
            if (!self->tree_.empty()) {
                self->tree_.front().root = 0;
                signalProcessTrees(self->tree_, SIGKILL);
            }
            return;
        }
        self->signalNow(SIGKILL);
    });
}

void RunningCommand::setTimeout(std::chrono::milliseconds timeout,
                                std::chrono::milliseconds grace) {
    timeoutTimer_.expires_after(timeout);
    timeoutTimer_.async_wait([self = shared_from_this(), grace](boost::system::error_code ec) {
        if (ec || self->exited_) return;
        self->timedOut_ = true;
        self->kill(grace);
    });
}

}  // namespace sandbox::agent
