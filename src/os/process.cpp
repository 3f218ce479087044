#include "os/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <system_error>

extern char** environ;

namespace sandbox::os {

void Fd::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

Pipe Pipe::make(bool nonBlockingRead) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        throw std::system_error(errno, std::generic_category(), "pipe2");
    Pipe p{Fd(fds[0]), Fd(fds[1])};
    if (nonBlockingRead) ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    return p;
}

NamedPipe NamedPipe::make(const std::string& dir) {
    static std::atomic<unsigned long> counter{0};
    NamedPipe p;
    p.path_ = dir + "/p" + std::to_string(::getpid()) + "." + std::to_string(++counter);
    if (::mkfifo(p.path_.c_str(), 0600) != 0) {
        // The directory may have been removed from under us (it is the sandbox's to delete).
        if (errno != ENOENT || ::mkdir(dir.c_str(), 0700) != 0 ||
            ::mkfifo(p.path_.c_str(), 0600) != 0) {
            int e = errno;
            p.path_.clear();
            throw std::system_error(e, std::generic_category(), "mkfifo in " + dir);
        }
    }
    // The read end first (opening a FIFO for writing fails while nobody reads), then ours.
    p.read = Fd(::open(p.path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (p.read) p.keep = Fd(::open(p.path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (!p.read || !p.keep) throw std::system_error(errno, std::generic_category(), "open fifo");
    return p;
}

NamedPipe::~NamedPipe() {
    if (!path_.empty()) ::unlink(path_.c_str());
}

namespace {
// Children started by spawnProcess() and not yet reaped (sandboxd may spawn from several
// threads, hence the lock).
std::mutex childrenMutex;
std::set<pid_t>& spawnedChildren() {
    static std::set<pid_t> pids;
    return pids;
}
}  // namespace

bool isSpawnedChild(pid_t pid) {
    std::lock_guard lock(childrenMutex);
    return spawnedChildren().count(pid) != 0;
}

void adoptChild(pid_t pid) {
    std::lock_guard lock(childrenMutex);
    spawnedChildren().insert(pid);
}

void forgetChild(pid_t pid) {
    std::lock_guard lock(childrenMutex);
    spawnedChildren().erase(pid);
}

namespace {
// Descriptors opened without O_CLOEXEC elsewhere in the process (Asio's sockets: the listening
// socket and every client connection) would be inherited by each child, keeping connections
// open after the agent closed them and the port bound after the agent exited. Mark them all
// close-on-exec before spawning; the child gets only what SpawnOptions::fds maps.
void markAllCloseOnExec() {
    DIR* d = ::opendir("/proc/self/fd");
    if (!d) return;
    int own = ::dirfd(d);
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long fd = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || fd <= 2 || fd == own) continue;
        int flags = ::fcntl(static_cast<int>(fd), F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            ::fcntl(static_cast<int>(fd), F_SETFD, flags | FD_CLOEXEC);
    }
    ::closedir(d);
}
}  // namespace

namespace {

// Maps descriptors in two steps (dup each source above every target number, then dup2 those
// onto the targets), so a target number that is also a source is not clobbered. Just above the
// highest target, not at a fixed number: a process may have a small RLIMIT_NOFILE.
std::vector<int> dupAboveTargets(const std::vector<std::pair<int, int>>& fds) {
    int above = 3;
    for (const auto& [child, parent] : fds) above = std::max(above, child + 1);
    std::vector<int> temps;
    for (const auto& [child, parent] : fds) {
        int tmp = ::fcntl(parent, F_DUPFD_CLOEXEC, above);
        if (tmp < 0) {
            int e = errno;
            for (int t : temps) ::close(t);
            throw std::system_error(e, std::generic_category(), "dup");
        }
        temps.push_back(tmp);
    }
    return temps;
}

}  // namespace

bool isDirectory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

pid_t spawnProcess(const SpawnOptions& opts) {
    markAllCloseOnExec();
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (opts.newProcessGroup) {
        flags |= POSIX_SPAWN_SETPGROUP;
        posix_spawnattr_setpgroup(&attr, 0);
    }
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, flags);
    std::vector<int> temps = dupAboveTargets(opts.fds);
    for (size_t i = 0; i < opts.fds.size(); ++i)
        posix_spawn_file_actions_adddup2(&fa, temps[i], opts.fds[i].first);
    if (opts.cwd) posix_spawn_file_actions_addchdir_np(&fa, opts.cwd->c_str());

    std::vector<char*> argv, envp;
    for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    pid_t pid = -1;
    int rc = posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
    for (int t : temps) ::close(t);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::system_error(rc, std::generic_category(), "spawn " + opts.argv[0]);
    {
        std::lock_guard lock(childrenMutex);
        spawnedChildren().insert(pid);
    }
    return pid;
}

namespace {

// What the confined child needs, prepared by the parent: the child shares the parent's memory
// (CLONE_VM) and must not allocate, lock or call into anything but the kernel.
struct ConfinedChild {
    const char* path;
    char* const* argv;
    char* const* envp;
    const int* from;  // descriptors to dup2 ...
    const int* to;    // ... onto these numbers
    std::size_t nfds;
    const char* cwd;  // nullptr: stay
    bool newProcessGroup;
    // The Confinement, flattened (no container is touched in the child).
    const int* joinFds;
    std::size_t njoin;
    const std::pair<int, unsigned long>* rlimits;
    std::size_t nrlimits;
    bool setUid, setGid;
    uid_t uid;
    gid_t gid;
    const gid_t* groups;
    std::size_t ngroups;
    bool keyring;
    int err;           // errno of the step that failed
    const char* step;  // nullptr: none failed
};

// The kernel's struct sigaction for rt_sigaction(2) (no restorer is needed to set SIG_DFL).
struct KernelSigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
};

// The child of spawnConfined(). Raw system calls only: libc's set*id() wrappers would signal
// the parent's threads (their memory is shared), and nothing here may be instrumented by the
// sanitizers (the child runs on a stack they do not know).
__attribute__((no_sanitize("address", "undefined"))) int confinedChildMain(void* arg) {
    auto* c = static_cast<ConfinedChild*>(arg);
    const char* step = nullptr;
    // Every signal to its default action (the parent blocked them all around clone, so none of
    // its handlers can run here first), then nothing blocked.
    KernelSigaction dfl{SIG_DFL, 0, nullptr, 0};
    for (long sig = 1; sig < 65; ++sig)
        if (sig != SIGKILL && sig != SIGSTOP) ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
    if (c->newProcessGroup && ::syscall(SYS_setpgid, 0, 0) != 0) {
        step = "setpgid";
        goto failed;
    }
    for (std::size_t i = 0; i < c->nfds; ++i)
        if (::syscall(SYS_dup2, c->from[i], c->to[i]) < 0) {
            step = "dup2";
            goto failed;
        }
    if (c->cwd && ::syscall(SYS_chdir, c->cwd) != 0) {
        step = "chdir";
        goto failed;
    }
    for (std::size_t i = 0; i < c->njoin; ++i)
        if (::syscall(SYS_write, c->joinFds[i], "0", 1) != 1) {
            step = "joining the cgroup";
            goto failed;
        }
    for (std::size_t i = 0; i < c->nrlimits; ++i) {
        struct rlimit rl {
            c->rlimits[i].second, c->rlimits[i].second
        };
        if (::syscall(SYS_prlimit64, 0, c->rlimits[i].first, &rl, nullptr) != 0) {
            step = "setrlimit";
            goto failed;
        }
    }
    if (c->setUid || c->setGid) {
        if (::syscall(SYS_setgroups, c->ngroups, c->groups) != 0) {
            step = "setgroups";
            goto failed;
        }
        if (c->setGid && ::syscall(SYS_setresgid, c->gid, c->gid, c->gid) != 0) {
            step = "setresgid";
            goto failed;
        }
        if (c->setUid && ::syscall(SYS_setresuid, c->uid, c->uid, c->uid) != 0) {
            step = "setresuid";
            goto failed;
        }
    }
    if (c->keyring && ::syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, nullptr) < 0) {
        step = "joining a new session keyring";
        goto failed;
    }
    {
        unsigned long none = 0;
        ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, 8);
    }
    ::syscall(SYS_execve, c->path, c->argv, c->envp);
    step = "exec";
failed:
    c->err = errno;
    c->step = step;
    ::syscall(SYS_exit_group, 127);
    return 127;
}

}  // namespace

pid_t spawnConfined(const SpawnOptions& opts, const Confinement& confine) {
    markAllCloseOnExec();
    std::vector<int> from = dupAboveTargets(opts.fds), to;
    for (const auto& [child, parent] : opts.fds) to.push_back(child);
    auto closeTemps = [&] {
        for (int t : from) ::close(t);
    };
    std::vector<char*> argv, envp;
    for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (const auto& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    ConfinedChild c{argv[0],
                    argv.data(),
                    envp.data(),
                    from.data(),
                    to.data(),
                    from.size(),
                    opts.cwd ? opts.cwd->c_str() : nullptr,
                    opts.newProcessGroup,
                    confine.joinCgroups.data(),
                    confine.joinCgroups.size(),
                    confine.rlimits.data(),
                    confine.rlimits.size(),
                    confine.uid.has_value(),
                    confine.gid.has_value(),
                    confine.uid.value_or(0),
                    confine.gid.value_or(0),
                    confine.groups.data(),
                    confine.groups.size(),
                    confine.newSessionKeyring,
                    0,
                    nullptr};

    constexpr std::size_t kStack = 256 * 1024;
    void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
        int e = errno;
        closeTemps();
        throw std::system_error(e, std::generic_category(), "mmap");
    }
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    // CLONE_VFORK: this thread resumes once the child has exec'd or exited.
    pid_t pid = ::clone(confinedChildMain, static_cast<char*>(stack) + kStack,
                        CLONE_VM | CLONE_VFORK | SIGCHLD, &c);
    int cloneErr = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::munmap(stack, kStack);
    closeTemps();
    if (pid < 0) throw std::system_error(cloneErr, std::generic_category(), "clone");
    if (c.step) {
        int status = 0;
        ::waitpid(pid, &status, 0);
        throw std::system_error(c.err, std::generic_category(),
                                std::string(c.step) + " (starting " + opts.argv[0] + ")");
    }
    {
        std::lock_guard lock(childrenMutex);
        spawnedChildren().insert(pid);
    }
    return pid;
}

Fd openPidFd(pid_t pid) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "pidfd_open");
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    return Fd(fd);
}

std::optional<int> reapExitCode(pid_t pid) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == 0) return std::nullopt;
    if (r < 0) return -1;
    {
        std::lock_guard lock(childrenMutex);
        spawnedChildren().erase(pid);
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

std::map<pid_t, ProcStat> readProcTable() {
    std::map<pid_t, ProcStat> table;
    DIR* d = ::opendir("/proc");
    if (!d) return table;
    while (dirent* e = ::readdir(d)) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        char path[64];
        std::snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = ::open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        char buf[512];
        ssize_t n = ::read(fd, buf, sizeof buf - 1);
        ::close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        // "pid (comm) S ppid pgrp session ..." — comm may contain spaces and parens: use the
        // last ')'.
        char* rp = std::strrchr(buf, ')');
        if (!rp || rp[1] == '\0' || rp[2] == '\0') continue;
        ProcStat st;
        st.state = rp[2];
        long ppid = 0, pgid = 0, sid = 0;
        unsigned long long start = 0;
        // Fields 4-6 (ppid, pgrp, session), 15 skipped (7-21), then 22 (starttime).
        int got = std::sscanf(rp + 3,
                              " %ld %ld %ld %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
                              "%*s %*s %llu",
                              &ppid, &pgid, &sid, &start);
        if (got < 3) continue;
        st.start = start;
        st.ppid = static_cast<pid_t>(ppid);
        st.pgid = static_cast<pid_t>(pgid);
        st.sid = static_cast<pid_t>(sid);
        table[static_cast<pid_t>(pid)] = st;
    }
    ::closedir(d);
    return table;
}

std::vector<pid_t> descendantsOf(pid_t root) {
    auto table = readProcTable();
    std::multimap<pid_t, pid_t> children;
    for (const auto& [pid, info] : table) children.emplace(info.ppid, pid);
    std::vector<pid_t> out;
    std::vector<pid_t> frontier{root};
    std::set<pid_t> seen{root};
    while (!frontier.empty()) {
        pid_t p = frontier.back();
        frontier.pop_back();
        auto [b, e] = children.equal_range(p);
        for (auto it = b; it != e; ++it) {
            if (seen.insert(it->second).second) {
                out.push_back(it->second);
                frontier.push_back(it->second);
            }
        }
    }
    return out;
}

int freezeThenSignal(const std::function<std::vector<pid_t>()>& members, std::set<pid_t> frozen,
                     int sig, int rounds) {
    // Re-walk until no new member appears (a process may fork between walks), then signal.
    for (int round = 0; round < rounds; ++round) {
        bool grew = false;
        for (pid_t p : members())
            if (frozen.insert(p).second) {
                ::kill(p, SIGSTOP);
                grew = true;
            }
        if (!grew) break;
    }
    int n = 0;
    for (pid_t p : frozen)
        if (::kill(p, sig) == 0) ++n;
    for (pid_t p : frozen) ::kill(p, SIGCONT);
    return n;
}

int signalTree(pid_t root, int sig, bool includeRoot) {
    std::set<pid_t> frozen;
    if (includeRoot && ::kill(root, SIGSTOP) == 0) frozen.insert(root);
    return freezeThenSignal([root] { return descendantsOf(root); }, std::move(frozen), sig, 8);
}

bool isAlive(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", pid);
    std::ifstream f(path);
    if (!f) return false;
    std::string line;
    std::getline(f, line);
    auto rp = line.rfind(')');
    return rp != std::string::npos && rp + 2 < line.size() && line[rp + 2] != 'Z' &&
           line[rp + 2] != 'X';
}

bool isRunnable(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/status", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char buf[4096];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    const unsigned long long kill = 1ull << (SIGKILL - 1);
    for (const char* key : {"SigPnd:", "ShdPnd:"}) {
        const char* at = std::strstr(buf, key);
        if (at && (std::strtoull(at + std::strlen(key), nullptr, 16) & kill)) return false;
    }
    const char* state = std::strstr(buf, "State:");
    if (!state) return false;
    state += 6;
    while (*state == ' ' || *state == '\t') ++state;
    return std::strchr("ZXTt", *state) == nullptr;
}

std::pair<bool, std::size_t> drainFd(int fd, std::string& out, std::size_t limit) {
    std::size_t dropped = 0;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            std::size_t keep =
                out.size() < limit ? std::min<std::size_t>(n, limit - out.size()) : 0;
            out.append(buf, keep);
            dropped += static_cast<std::size_t>(n) - keep;
            continue;
        }
        if (n == 0) return {true, dropped};
        if (errno == EINTR) continue;
        return {errno != EAGAIN && errno != EWOULDBLOCK, dropped};
    }
}

std::vector<std::string> environWith(
    const std::vector<std::pair<std::string, std::optional<std::string>>>& overrides) {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string kv(*e);
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : overrides) {
        if (v)
            env[k] = *v;
        else
            env.erase(k);
    }
    std::vector<std::string> out;
    out.reserve(env.size());
    for (auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
}

}  // namespace sandbox::os
