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

/// A pipe with a name: a FIFO in `dir` that another process opens by path for writing (a
/// long-lived shell, which cannot be handed new descriptors). `read` is non-blocking and
/// close-on-exec; `keep` is a write end held by the maker so that `read` sees end-of-file only
/// once the writers that opened the path are done and `keep` is closed. The path is unlinked
/// when the object goes (writers that opened it keep their descriptors).
class NamedPipe {
  public:
    Fd read, keep;
    /// Makes a FIFO in `dir` (created, mode 0700, when missing). Throws std::system_error.
    static NamedPipe make(const std::string& dir);
    const std::string& path() const noexcept { return path_; }
    NamedPipe(NamedPipe&& o) noexcept
        : read(std::move(o.read)), keep(std::move(o.keep)), path_(std::exchange(o.path_, {})) {}
    NamedPipe& operator=(NamedPipe&&) = delete;
    ~NamedPipe();

  private:
    NamedPipe() = default;
    std::string path_;
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

/// What a confined child does to itself after the descriptors are in place and before it runs
/// the program (spawnConfined), in this order, so that nothing of the program ever runs outside
/// its groups, limits or identity.
struct Confinement {
    /// Open descriptors of cgroup.procs files: "0" is written to each (the child joins).
    std::vector<int> joinCgroups;
    /// setrlimit(resource, {value, value}) for each pair.
    std::vector<std::pair<int, unsigned long>> rlimits;
    /// When set: the supplementary groups, then the gid, then the uid are switched to these
    /// (real, effective and saved), dropping every privilege of the caller.
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::vector<gid_t> groups;
    /// A new, empty session keyring (owned by the new uid), so no key of the caller's session
    /// is reachable from the program.
    bool newSessionKeyring = false;
};

/// Spawns like spawnProcess() (its own process group, default signal dispositions, the fds
/// mapped), applying `confine` in the child first (clone with CLONE_VM|CLONE_VFORK: no copy of
/// the parent, raw system calls only). Returns the pid; throws std::system_error naming the step
/// that failed (the child is reaped then).
pid_t spawnConfined(const SpawnOptions& opts, const Confinement& confine);

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

/// False when `pid` will not run what it is given: gone, a zombie, stopped (SIGSTOP, or in a
/// tracing stop), or about to die (a SIGKILL is pending: it was sent, the process has not run
/// since). Reads /proc/PID/status.
bool isRunnable(pid_t pid);

/// Reads everything currently available from a non-blocking fd, appending to `out` (at most
/// `limit` bytes kept; the rest is read and counted in the return value's second member).
/// Returns {true if EOF was reached, bytes dropped}.
std::pair<bool, std::size_t> drainFd(int fd, std::string& out, std::size_t limit);

/// This process's environment as "K=V" strings with `overrides` applied (nullopt = unset).
std::vector<std::string> environWith(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& overrides);

}  // namespace sandbox::os
