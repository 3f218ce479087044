#pragma once
// Process plumbing shared by sandbox-agent and sandboxd: descriptors, spawning without fork()
// from a large process (posix_spawn, i.e. vfork+exec), pidfds, /proc walks and tree kills.
#include <sys/types.h>

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sandbox::os {

/// An owned file descriptor.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    ~Fd() { reset(); }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    void reset() noexcept;

  private:
    int fd_ = -1;
};

/// A pipe; both ends close-on-exec. The read end is non-blocking when requested.
struct Pipe {
    Fd read, write;
    static Pipe make(bool nonBlockingRead = true);
};

struct SpawnOptions {
    std::vector<std::string> argv;
    std::vector<std::string> env;  ///< "K=V" entries
    std::optional<std::string> cwd;
    /// (child fd, parent fd) pairs: the parent's fd appears at that number in the child.
    std::vector<std::pair<int, int>> fds;
    bool newProcessGroup = true;
};

/// Whether `path` names a directory (following links).
bool isDirectory(const std::string& path);

/// Spawns with posix_spawn. Returns the pid, or throws std::system_error (errno of the
/// failure, e.g. ENOENT for a missing cwd or program).
pid_t spawnProcess(const SpawnOptions& opts);

/// Whether `pid` is a child started by spawnProcess() and not yet reaped through
/// reapExitCode() (its owner reaps it; an orphan reaper must leave it alone).
bool isSpawnedChild(pid_t pid);

/// Marks a child started by other means (forkpty) as owned, so that the orphan reaper leaves it
/// to its owner; forgetChild() after the owner reaped it.
void adoptChild(pid_t pid);
void forgetChild(pid_t pid);

/// pidfd_open(2): a descriptor that becomes readable when `pid` exits. Throws on failure.
Fd openPidFd(pid_t pid);

/// waitpid(WNOHANG) translated to a shell-style exit code (128+signal for a signal death).
/// Returns nullopt while the process is still running.
std::optional<int> reapExitCode(pid_t pid);

/// One process's line of /proc/PID/stat: parent, process group, session and state letter.
/// A process tree to find: its root pid (0: none), its tag ("": none), and the members found
/// by earlier walks (pid → start time). A forked shell carries the tag only in its variables,
/// not in /proc/<pid>/environ, so once its parent dies only this memory still finds it.
struct TreeSpec {
    pid_t root = 0;
    std::string tag;
    std::map<pid_t, unsigned long long> known;
};

struct ProcStat {
    pid_t ppid = 0, pgid = 0, sid = 0;
    char state = '?';
    /// Start time in clock ticks after boot: with the pid, names one process (pids are reused).
    unsigned long long start = 0;
};
/// Every process visible in /proc, by pid.
std::map<pid_t, ProcStat> readProcTable();

/// Stops (SIGSTOP) every process `members()` lists, listing again until no new one appears (at
/// most `rounds` times; `frozen` are already stopped), then sends `sig` to all and SIGCONT.
/// Returns how many were signalled.
int freezeThenSignal(const std::function<std::vector<pid_t>()>& members, std::set<pid_t> frozen,
                     int sig, int rounds);

/// Every descendant of `root` (not `root` itself), parents before children, from /proc.
std::vector<pid_t> descendantsOf(pid_t root);

/// Stops (SIGSTOP) the tree first so nothing forks during the walk, then sends `sig` to every
/// process of the tree rooted at `root` (including it when `includeRoot`), then SIGCONT.
/// Returns how many processes were signalled.
int signalTree(pid_t root, int sig, bool includeRoot);

/// True when `pid` exists and is not a zombie.
bool isAlive(pid_t pid);

/// Reads everything currently available from a non-blocking fd, appending to `out` (at most
/// `limit` bytes kept; the rest is read and counted in the return value's second member).
/// Returns {true if EOF was reached, bytes dropped}.
std::pair<bool, std::size_t> drainFd(int fd, std::string& out, std::size_t limit);

/// This process's environment as "K=V" strings with `overrides` applied (nullopt = unset).
std::vector<std::string> environWith(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& overrides);

}  // namespace sandbox::os
