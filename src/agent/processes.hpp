#pragma once
// The process table: background processes (POST /api/process/start, /api/execute with
// background:true) and exec streams, their bounded output (a ring buffer that readers follow
// with cursors, so a replay never repeats a chunk), timeouts, and tree kills that leave no
// descendant behind (tagged environments + a child subreaper + freeze/walk/kill).
#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/base.hpp"
#include "agent/running.hpp"
#include "core/wire_process.hpp"

namespace sandbox::agent {

class Agent;

/// Environment variable set for every background process; its descendants inherit it, which
/// is how a kill finds members that left the process tree (double fork, setsid).
inline constexpr const char* kProcessTagVar = "SANDBOX_PROCESS_TAG";

/// A process's output: chunks of stdout (stream 0) and stderr (stream 1) in arrival order,
/// bounded to `limit` bytes in total; the oldest chunks are dropped first and counted.
class ProcessLog {
  public:
    struct Chunk {
        std::uint64_t seq;
        int stream;
        std::string data;  ///< valid UTF-8
    };
    explicit ProcessLog(std::size_t limit = core::wire::kProcessLogRing) : limit_(limit) {}
    void append(int stream, std::string data);
    const std::deque<Chunk>& chunks() const noexcept { return chunks_; }
    std::uint64_t firstSeq() const noexcept {
        return chunks_.empty() ? nextSeq_ : chunks_.front().seq;
    }
    std::uint64_t nextSeq() const noexcept { return nextSeq_; }
    /// Bytes of `stream` dropped from the front so far.
    std::uint64_t droppedBytes(int stream) const noexcept { return dropped_[stream]; }
    std::size_t size() const noexcept { return size_; }
    std::size_t limit() const noexcept { return limit_; }
    /// The kept output of one stream.
    std::string text(int stream) const;

  private:
    std::deque<Chunk> chunks_;
    std::uint64_t nextSeq_ = 0;
    std::uint64_t dropped_[2] = {0, 0};
    std::size_t size_ = 0, limit_;
};

/// A reader's place in a ProcessLog.
struct LogCursor {
    std::uint64_t seq = 0;
    std::uint64_t accounted[2] = {0, 0};  ///< dropped bytes already reported per stream
};

/// A background process or exec stream, as listed by the process API.
struct ProcessRecord {
    explicit ProcessRecord(net::any_io_executor ex);
    std::string id;
    std::optional<pid_t> pid;
    std::string command;
    std::string sessionId;
    std::string status = "running";  ///< running, completed, failed, killed, error
    std::string startTime;
    std::optional<std::string> endTime;
    std::optional<int> exitCode;
    ProcessLog log;
    std::shared_ptr<RunningCommand> run;
    std::string tag;                ///< value of kProcessTagVar in its environment ("" if none)
    bool ended = false;             ///< the command itself is over (exit learned)
    bool killing = false;           ///< a kill is in progress
    std::optional<int> forcedExit;  ///< 143/137 after a kill, 124 after a timeout
    std::optional<std::int64_t> timeoutMs;

    /// Appends output and wakes the readers.
    void append(int stream, std::string data);
    /// Records the end: status from the exit code (0 completed, 137/143 killed, else failed;
    /// unknown code: error); wakes the readers.
    void finish(std::optional<int> code);
    /// Wakes the readers (something about the record changed).
    void notify();
    /// Waits until something changes (output, end) or `deadline`.
    awaitable<void> waitChange(std::chrono::steady_clock::time_point deadline);
    core::wire::ProcessInfo info() const;

  private:
    net::any_io_executor ex_;
    std::shared_ptr<Event> changed_;
};

/// The members of each tree (rules as processTreeMembers) from one scan of /proc: each
/// process's environment is read once, however many trees are asked for. Members found before
/// (`known`, same pid and start time) stay members; each spec's `known` is updated.
std::vector<std::set<pid_t>> processTreesMembers(std::vector<TreeSpec>& trees);

/// Freezes the members of all `trees`, signals them, thaws them (see signalProcessTree).
/// Each spec's `known` is updated.
int signalProcessTrees(std::vector<TreeSpec>& trees, int sig);

/// The members of the process tree tagged `tag` and rooted at `root` (0: none): descendants
/// of the root and of every tagged process, and members of sessions or process groups that a
/// member leads. Never the agent itself. Zombies are left out.
std::set<pid_t> processTreeMembers(pid_t root, const std::string& tag);

/// Freezes (SIGSTOP) the tree until no new member appears, sends `sig` to every member, then
/// SIGCONT. Returns how many were signalled.
int signalProcessTree(pid_t root, const std::string& tag, int sig);

/// Reaps zombie children of the agent that it did not spawn itself (orphans reparented to it
/// as a child subreaper). Spawned children are reaped by their owners.
void reapOrphans();

/// Makes the agent a child subreaper (PR_SET_CHILD_SUBREAPER) and reaps orphans on SIGCHLD.
void enableSubreaper(net::any_io_executor ex);

class ProcessTable {
  public:
    explicit ProcessTable(net::any_io_executor ex) : ex_(ex) {}

    /// A new record; `id` must not name a running process (checked by the caller).
    std::shared_ptr<ProcessRecord> add(std::string command, std::string sessionId,
                                       std::shared_ptr<RunningCommand> run,
                                       std::optional<std::string> id = {}, std::string tag = {});
    std::shared_ptr<ProcessRecord> get(const std::string& id) const;
    /// Running first, then finished, each by start time.
    std::vector<std::shared_ptr<ProcessRecord>> list() const;
    /// Reads the process's output into its record until it ends; arms its timeout.
    void pump(std::shared_ptr<ProcessRecord> rec, std::chrono::milliseconds grace);
    /// Kills the process's whole tree: SIGTERM, then SIGKILL for what is left after `grace`
    /// (at once when `force`). Returns when no member is left (bounded) and the record ended.
    awaitable<void> kill(std::shared_ptr<ProcessRecord> rec, std::chrono::milliseconds grace,
                         bool force);
    /// kill() for several processes at once (one /proc scan per poll for all of them).
    awaitable<void> killMany(const std::vector<std::shared_ptr<ProcessRecord>>& recs,
                             std::chrono::milliseconds grace, bool force);
    /// A fresh unique tag value for a process with this id.
    std::string newTag(const std::string& id);
    /// Kills every running process at once (shutdown).
    void killAllNow();
    /// SIGKILLs the trees of the running processes started in session `sessionId`.
    void killSessionNow(const std::string& sessionId);

  private:
    void prune();
    net::any_io_executor ex_;
    std::map<std::string, std::shared_ptr<ProcessRecord>> records_;
    std::uint64_t tagCounter_ = 0;
};

}  // namespace sandbox::agent
