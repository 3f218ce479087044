#pragma once
// A session: one long-lived `bash --norc` whose state (cwd, variables, functions, options)
// persists between commands. Commands travel to it as data (NUL-terminated, read with
// `read -d ''`) and are `eval`ed by a one-line driver, so any text — heredocs, syntax errors,
// `return`, `break` — is handled by bash itself and can never desynchronise the protocol.
// Output arrives on pipes the agent reads continuously (fresh ones per command, so output a
// background job writes later never lands in another command's result); the exit status on a
// control pipe.
// No temp files, no polling.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/base.hpp"
#include "agent/running.hpp"
#include "core/wire.hpp"

namespace sandbox::agent {

/// What to run.
struct CommandSpec {
    std::string command;
    core::wire::EnvMap env;  ///< per-command variables (nullopt values are skipped)
    std::optional<std::string> cwd;
};

/// Result of a foreground command in a session.
struct ForegroundResult {
    enum class Outcome { Exited, TimedOut, ShellExited, Destroyed } outcome = Outcome::Exited;
    int exitCode = 0;       ///< Exited: the command's status; ShellExited: the shell's status
    std::string stdoutRaw;  ///< raw captured bytes (normalised by the caller)
    std::string stderrRaw;
};

/// Largest output captured per stream of a foreground command; the rest is dropped and noted.
inline constexpr std::size_t kMaxForegroundOutput = 64ull * 1024 * 1024;

class Session : public std::enable_shared_from_this<Session> {
  public:
    struct Options {
        std::string id;
        std::map<std::string, std::string> env;
        std::string cwd;  ///< falls back to $HOME, then / when it does not exist
        std::optional<std::int64_t> commandTimeoutMs;
        std::string runtimeDir;  ///< where each command's named pipes are made
    };

    /// Spawns the shell. Throws std::system_error when bash cannot be started.
    static std::shared_ptr<Session> spawn(net::any_io_executor ex, Options opts);
    ~Session();

    const std::string& id() const noexcept { return opts_.id; }
    std::optional<std::int64_t> commandTimeoutMs() const noexcept { return opts_.commandTimeoutMs; }
    bool alive() const noexcept { return alive_; }
    std::optional<int> shellExitCode() const noexcept { return shellExit_; }
    /// Serialises foreground work on this session (commands, file operations, starts).
    AsyncMutex& mutex() noexcept { return mutex_; }

    /// Runs a command in the shell itself (state persists). Caller holds mutex().
    awaitable<ForegroundResult> exec(const CommandSpec& spec,
                                     std::optional<std::chrono::milliseconds> timeout);
    /// Starts a command in a background subshell of this shell (it inherits the shell's state
    /// but changes nothing in it). Returns once its pid is known. Caller holds mutex().
    awaitable<std::shared_ptr<RunningCommand>> startBackground(const CommandSpec& spec);
    /// The shell's current directory (/proc/<pid>/cwd, no command needed).
    std::string currentDir() const;

    /// Kills the shell, everything it started, and fails an in-flight command with Destroyed.
    void destroy();

  private:
    explicit Session(net::any_io_executor ex, Options opts);
    awaitable<void> controlLoop();
    /// One output stream of one foreground command: drained into `target` while the command
    /// runs, then read and discarded until every writer (a job the command left running
    /// included) has closed it, so such a job neither blocks nor gets EPIPE.
    struct Capture {
        Capture(net::any_io_executor ex, Fd fd);
        net::posix::stream_descriptor pipe;
        std::string* target = nullptr;
        std::size_t dropped = 0;
        /// Reads what is available into target (or nowhere); true at EOF.
        bool drain();
    };
    static awaitable<void> outputLoop(std::shared_ptr<Capture> c);
    awaitable<void> deathLoop();
    awaitable<bool> writeToShell(const std::string& text);
    void onShellGone(int code);
    static std::string envPrologue(const core::wire::EnvMap& env, std::string& epilogue);

    struct Pending {
        explicit Pending(net::any_io_executor ex) : done(ex) {}
        Event done;
        std::optional<int> status;   // "S n"
        std::optional<pid_t> bgPid;  // "B n"
    };

    net::any_io_executor ex_;
    Options opts_;
    pid_t pid_ = -1;
    net::posix::stream_descriptor stdin_, control_, pidfd_;
    AsyncMutex mutex_;
    std::shared_ptr<Pending> pending_;
    std::shared_ptr<Capture> out_, err_;  // of the foreground command in progress
    std::string controlBuf_;
    bool alive_ = true, destroyed_ = false;
    std::optional<int> shellExit_;
    std::vector<std::weak_ptr<RunningCommand>> background_;
};

}  // namespace sandbox::agent
