#pragma once
// A session: one long-lived `bash --norc` whose state (cwd, variables, functions, options)
// persists between commands. Commands travel to it as data (NUL-terminated, read with
// `read -d ''`) and are `eval`ed by a one-line driver, so any text — heredocs, syntax errors,
// `return`, `break` — is handled by bash itself and can never desynchronise the protocol.
// Output arrives on pipes the agent reads continuously; the exit status on a control pipe.
// No temp files, no polling.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/async_util.hpp"
#include "agent/proc.hpp"
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
    awaitable<void> outputLoop(net::posix::stream_descriptor& d, bool isStderr);
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
    net::posix::stream_descriptor stdin_, control_, out_, err_, pidfd_;
    AsyncMutex mutex_;
    std::shared_ptr<Pending> pending_;
    std::string* captureOut_ = nullptr;
    std::string* captureErr_ = nullptr;
    std::size_t droppedOut_ = 0, droppedErr_ = 0;
    std::string controlBuf_;
    bool alive_ = true, destroyed_ = false;
    std::optional<int> shellExit_;
    std::vector<std::weak_ptr<RunningCommand>> background_;
};

}  // namespace sandbox::agent
