#pragma once
// The agent: its sessions, the process table, sessionless commands and the file watches, in
// plain C++ and core/wire types. Knows nothing of HTTP: the route handlers (routes.cpp, the
// *_routes.cpp files) map requests onto these services and those of exec.hpp, files.hpp,
// git.hpp, watch.hpp and ports.hpp.
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/base.hpp"
#include "agent/interpreter.hpp"
#include "agent/processes.hpp"
#include "agent/running.hpp"
#include "agent/session.hpp"
#include "core/wire.hpp"

namespace sandbox::agent {

class WatchService;

struct AgentConfig {
    std::string workspace = "/workspace";
    std::string version = "unknown";
    std::optional<std::int64_t> defaultCommandTimeoutMs;  ///< COMMAND_TIMEOUT_MS
    std::chrono::milliseconds killGrace{2000};            ///< TERM -> KILL escalation
    /// A private directory (mode 0700) for the named pipes that carry session commands' output
    /// (made and removed by main; --runtime-dir).
    std::string runtimeDir = "/tmp";
    /// Executors kept started per interpreter language once it is used (INTERPRETER_POOL_SIZE).
    int interpreterPool = 1;
};

class Agent {
  public:
    Agent(net::any_io_executor ex, AgentConfig cfg);
    ~Agent();

    const AgentConfig& config() const noexcept { return cfg_; }
    net::any_io_executor executor() const { return ex_; }

    // ---- sessions ----
    /// Explicit creation; throws ApiError SESSION_ALREADY_EXISTS for a live id.
    std::shared_ptr<Session> createSession(const core::wire::SessionCreateRequest& req);
    /// The live session with this id, creating it (cwd hint, timeout hint) when absent or dead.
    std::shared_ptr<Session> session(const std::string& id,
                                     const std::optional<std::string>& cwdHint = {},
                                     std::optional<std::int64_t> timeoutHint = {});
    std::vector<std::string> sessionIds() const;
    /// Deletes after in-flight work on it; throws ApiError (404 SESSION_NOT_FOUND-like) if unknown.
    awaitable<void> deleteSession(const std::string& id);
    /// Drops a session whose shell died (the next use creates a fresh one).
    void evictIfDead(const std::string& id);

    // ---- processes (see processes.hpp) ----
    ProcessTable& processTable() noexcept { return procs_; }
    std::shared_ptr<ProcessRecord> addProcess(std::string command, std::string sessionId,
                                              std::shared_ptr<RunningCommand> run,
                                              std::optional<std::string> id = {},
                                              std::string tag = {});
    std::shared_ptr<ProcessRecord> process(const std::string& id) const { return procs_.get(id); }
    std::vector<std::shared_ptr<ProcessRecord>> processes() const { return procs_.list(); }
    /// Keeps reading a background process's output into its record until it ends.
    void pump(std::shared_ptr<ProcessRecord> rec) { procs_.pump(std::move(rec), cfg_.killGrace); }

    /// Starts a sessionless command: a `bash -c command` of its own, in its own process group,
    /// whose state dies with it. A foreground command (`spare`) usually gets a bash spawned
    /// ahead of need and already waiting, and skips bash's start-up (about a millisecond); it
    /// behaves as under `bash -c` (same `$$`, environment, cwd, exit status, messages, and a
    /// lone external command replaces the shell, so its `$PPID` is the agent), except that the
    /// last command of a list is forked rather than exec'd. Background processes are spawned
    /// as `bash -c` always (their pid is the program's when bash would exec it). The command is
    /// tagged (kProcessTagVar; `spec.env` may bring the tag) and a kill takes its whole tree.
    /// `spec.cwd` must exist when given (callers check); the workspace otherwise.
    std::shared_ptr<RunningCommand> spawnSessionless(const CommandSpec& spec, bool spare);

    // ---- file watches (watch.hpp) ----
    WatchService& watches() noexcept { return *watches_; }

    // ---- the code interpreter (interpreter.hpp) ----
    InterpreterService& interpreter() noexcept { return *interpreter_; }

    /// Kills every session and process (shutdown).
    void shutdown();

    /// Called with the id of each session deleted by deleteSession() (the PTYs listen).
    std::function<void(const std::string&)> onSessionDeleted;

  private:
    net::any_io_executor ex_;
    AgentConfig cfg_;
    std::map<std::string, std::shared_ptr<Session>> sessions_;
    std::vector<std::string> sessionOrder_;
    ProcessTable procs_;

    /// A `bash` spawned ahead of need for the next sessionless command (see spawnSessionless).
    struct SpareShell {
        pid_t pid = -1;
        Fd pidfd, commands, out, err;  ///< commands: the write end of its fd 60
    };
    std::optional<SpareShell> spare_;
    bool refillPosted_ = false, stopped_ = false;
    std::shared_ptr<int> life_ = std::make_shared<int>(0);  ///< posted work checks it
    std::optional<SpareShell> takeSpare();
    void refillSpare();
    void dropSpare();
    /// Kills a spare nobody will use and reaps it.
    static void discardSpare(const SpareShell& s);
    std::unique_ptr<InterpreterService> interpreter_;
    std::unique_ptr<WatchService> watches_;  ///< destroyed first: it stops every watch
};

/// Checks a request's environment variables: valid names, none of the agent's own (the session
/// driver's `__sb_*`, kProcessTagVar, which a kill relies on). Throws ApiError 400
/// VALIDATION_FAILED with INVALID_ENV_NAME.
void checkEnv(const core::wire::EnvMap& env);

/// A new process id: proc_<epochMs>_<6 base36 chars>.
std::string newProcessId();
/// A new session id: session_<epochMs>_<12 hex chars>.
std::string newSessionId();

}  // namespace sandbox::agent
