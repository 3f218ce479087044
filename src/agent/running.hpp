#pragma once
// A command running outside the request/response cycle of a session shell: its stdout and
// stderr arrive on pipes the agent reads; its end is learned from a status pipe (a command run
// by a session shell) or a pidfd (a command the agent spawned itself).
#include <boost/asio.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <chrono>
#include <optional>
#include <string>

#include "agent/base.hpp"

namespace sandbox::agent {

/// One item of a running command's output, in arrival order. The last item is Exit.
struct OutputChunk {
    enum Kind { Stdout, Stderr, Exit } kind = Stdout;
    std::string data;             ///< raw bytes (Stdout/Stderr)
    std::optional<int> exitCode;  ///< Exit: the exit code; nullopt when it is unknown
};

class RunningCommand : public std::enable_shared_from_this<RunningCommand> {
  public:
    /// How the end of the command is learned.
    enum class ExitSource { StatusPipe, PidFd };

    RunningCommand(net::any_io_executor ex, pid_t pid, Fd out, Fd err, Fd exitFd, ExitSource src);
    ~RunningCommand();

    /// Starts the readers. Output is buffered in a bounded channel, so a consumer that stops
    /// reading stops the command's pipes (back-pressure) until discard() is called.
    void start();
    /// Stores the next chunk in `out`; returns false after Exit was delivered.
    awaitable<bool> next(OutputChunk& out);
    /// Stop delivering: output is read and dropped from now on, so the command never blocks.
    void discard();

    /// Kills the whole tree (TERM, then KILL after `grace` if anything is left). The exit code
    /// reported becomes 128+signal of the last signal sent when the command did not report one.
    void kill(std::chrono::milliseconds grace);
    /// Arms a timeout: on expiry, kill(grace) and note timedOut().
    void setTimeout(std::chrono::milliseconds timeout, std::chrono::milliseconds grace);
    bool timedOut() const noexcept { return timedOut_; }
    pid_t pid() const noexcept { return pid_; }
    /// The kProcessTagVar value its processes carry: a kill then also takes every tagged
    /// process (and what they lead), descendants that left the tree included.
    void setTag(std::string tag);
    bool finished() const noexcept { return finished_; }

  private:
    awaitable<void> readLoop(net::posix::stream_descriptor& d, OutputChunk::Kind kind);
    awaitable<void> exitLoop();
    awaitable<void> deliver(OutputChunk&& chunk);
    void signalNow(int sig);

    using Channel = net::experimental::channel<void(boost::system::error_code, OutputChunk)>;
    net::any_io_executor ex_;
    pid_t pid_;
    net::posix::stream_descriptor out_, err_, exit_;
    ExitSource exitSource_;
    Channel channel_;
    Event readersDone_;
    net::steady_timer timeoutTimer_, killTimer_;
    int readersLeft_ = 2;
    bool exited_ = false, discard_ = false, finished_ = false, timedOut_ = false,
         exitTaken_ = false;
    int lastSignal_ = 0;
    std::vector<TreeSpec> tree_;  ///< empty, or the one tagged tree (see setTag)
};

}  // namespace sandbox::agent
