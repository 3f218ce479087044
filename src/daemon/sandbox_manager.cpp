#include "daemon/sandbox_manager.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "os/process.hpp"
#include "core/base64.hpp"

namespace sandbox::daemon {
namespace fs = std::filesystem;
using os::Fd;
using os::Pipe;
using net::use_awaitable;

namespace {

bool writeFile(const std::string& path, const std::string& value) {
    std::ofstream f(path);
    if (!f) return false;
    f << value;
    f.flush();
    return static_cast<bool>(f);
}

// cgroup v1 controllers this daemon uses, at their hierarchy roots.
const char* kPidsRoot = "/sys/fs/cgroup/pids";
const char* kMemoryRoot = "/sys/fs/cgroup/memory";

}  // namespace

std::string newSandboxId() {
    std::random_device rd;
    char bytes[16];
    for (auto& b : bytes) b = static_cast<char>(rd());
    return core::base32Lower(std::string_view(bytes, sizeof bytes));
}

bool isValidSandboxId(std::string_view id) {
    if (id.empty() || id.size() > 128) return false;
    for (char c : id)
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))) return false;
    return true;
}

bool bwrapWorks() {
    try {
        Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
        os::SpawnOptions so;
        so.argv = {"/usr/bin/bwrap",
                   "--unshare-all",
                   "--die-with-parent",
                   "--ro-bind",
                   "/",
                   "/",
                   "--proc",
                   "/proc",
                   "--dev",
                   "/dev",
                   "/bin/true"};
        so.env = {"PATH=/usr/bin:/bin"};
        so.fds = {{0, devnull.get()}, {1, devnull.get()}, {2, devnull.get()}};
        pid_t pid = os::spawnProcess(so);
        int st = 0;
        ::waitpid(pid, &st, 0);
        return WIFEXITED(st) && WEXITSTATUS(st) == 0;
    } catch (...) {
        return false;
    }
}

SandboxManager::SandboxManager(net::any_io_executor ex, DaemonConfig cfg)
    : ex_(ex), cfg_(std::move(cfg)) {
    // Only sandboxd may enter the sandboxes' directories: a sandbox can make its own files
    // set-user-id (it owns them), and a host user reaching one could run it as that owner.
    for (const char* sub : {"/sandboxes", "/pool", "/mounts"}) {
        fs::create_directories(cfg_.stateDir + sub);
        fs::permissions(cfg_.stateDir + sub, fs::perms::owner_all, fs::perm_options::replace);
    }
    // Buckets a killed sandboxd left mounted (their s3fs died with it or is orphaned).
    cleanStaleMounts(cfg_.stateDir + "/mounts");
    cgroupPrefix_ = "sandboxd-" + std::to_string(::getpid());
    if (os::isDirectory(kPidsRoot) && os::isDirectory(kMemoryRoot)) {
        std::string p = std::string(kPidsRoot) + "/" + cgroupPrefix_ + "-probe";
        if (::mkdir(p.c_str(), 0755) == 0) {
            cgroupsOk_ = writeFile(p + "/pids.max", "10");
            ::rmdir(p.c_str());
        }
    }
}

SandboxManager::~SandboxManager() {
    *alive_ = false;
    destroyAll();
}

std::shared_ptr<Sandbox> SandboxManager::find(const std::string& id) const {
    auto it = sandboxes_.find(id);
    return it == sandboxes_.end() ? nullptr : it->second;
}

void SandboxManager::launch(const std::shared_ptr<Sandbox>& sb) {
    fs::create_directories(sb->workspace);
    std::string runDir = sb->root + "/run";
    fs::create_directories(runDir);
    ::unlink(sb->socket.c_str());
    sb->runDir = Fd(::open(runDir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    sb->ready = sb->dead = false;
    ++sb->generation;
    sb->startError.clear();
    sb->started = std::make_shared<server::Event>(ex_);

    std::vector<std::string> argv;
    if (cfg_.isolation == Isolation::Bwrap) {
        // --cap-drop ALL: run by root, bwrap keeps every capability inside the sandbox's user
        // namespace, enough to remount the read-only binds writable (and so write the host's /usr).
        argv = {"/usr/bin/bwrap",
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--cap-drop",
                "ALL",
                "--clearenv",
                "--setenv",
                "PATH",
                "/usr/local/bin:/usr/bin:/bin",
                "--setenv",
                "HOME",
                "/workspace",
                "--setenv",
                "LANG",
                "C.UTF-8",
                "--setenv",
                "TERM",
                "xterm-256color",
                "--hostname",
                "sandbox"};
        for (const char* dir : {"/usr", "/etc", "/opt", "/srv"}) {
            if (os::isDirectory(dir)) {
                argv.insert(argv.end(), {"--ro-bind", dir, dir});
            }
        }
        for (const char* link : {"/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}) {
            struct stat st {};
            if (::lstat(link, &st) != 0) continue;
            if (S_ISLNK(st.st_mode)) {
                char target[4096];
                ssize_t n = ::readlink(link, target, sizeof target - 1);
                if (n > 0)
                    argv.insert(argv.end(),
                                {"--symlink", std::string(target, static_cast<size_t>(n)), link});
            } else if (S_ISDIR(st.st_mode)) {
                argv.insert(argv.end(), {"--ro-bind", link, link});
            }
        }
        argv.insert(argv.end(),
                    {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/run",
                     "--bind", sb->workspace, "/workspace", "--bind", runDir, "/run/sandbox",
                     "--ro-bind", cfg_.agentPath, "/run/sandbox-agent",
                     // The root tmpfs holding the mount points: read-only too.
                     "--remount-ro", "/", "--chdir", "/workspace", "--", "/run/sandbox-agent",
                     "--listen", "unix:/run/sandbox/agent.sock", "--workspace", "/workspace"});
    } else {
        // Relative to the agent's cwd (the workspace): the absolute path may be too long to bind.
        argv = {cfg_.agentPath, "--listen", "unix:../run/agent.sock", "--workspace", sb->workspace};
    }

    // The launcher waits on a pipe until it is in its cgroup and has its rlimits, then execs
    // the real program, so no process of the sandbox ever runs unconfined.
    Pipe gate = Pipe::make(false), out = Pipe::make();
    Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    os::SpawnOptions so;
    so.argv = {"/bin/sh", "-c", "read _ || exit 111; exec \"$@\"", "sandbox-launcher"};
    so.argv.insert(so.argv.end(), argv.begin(), argv.end());
    if (cfg_.isolation == Isolation::Bwrap)
        so.env = {"PATH=/usr/bin:/bin"};
    else
        so.env = os::environWith({{"SANDBOX_API_KEY", std::nullopt}, {"HOME", sb->workspace}});
    so.cwd = sb->workspace;
    so.fds = {{0, gate.read.get()}, {1, out.write.get()}, {2, devnull.get()}};
    sb->pid = os::spawnProcess(so);

    const Limits& lim = cfg_.limits;
    auto setLimit = [&](int resource, rlim_t value) {
        struct rlimit rl {
            value, value
        };
        ::prlimit(sb->pid, static_cast<__rlimit_resource>(resource), &rl, nullptr);
    };
    setLimit(RLIMIT_NOFILE, static_cast<rlim_t>(lim.maxOpenFiles));
    setLimit(RLIMIT_FSIZE, static_cast<rlim_t>(lim.maxFileBytes));
    setLimit(RLIMIT_CORE, 0);
    if (cgroupsOk_) {
        sb->cgroupName = cgroupPrefix_ + "-" + sb->id;
        std::string pids = std::string(kPidsRoot) + "/" + sb->cgroupName;
        std::string mem = std::string(kMemoryRoot) + "/" + sb->cgroupName;
        ::mkdir(pids.c_str(), 0755);
        ::mkdir(mem.c_str(), 0755);
        writeFile(pids + "/pids.max", std::to_string(lim.maxProcesses));
        writeFile(mem + "/memory.limit_in_bytes", std::to_string(lim.memoryBytes));
        writeFile(mem + "/memory.memsw.limit_in_bytes", std::to_string(lim.memoryBytes));
        writeFile(pids + "/cgroup.procs", std::to_string(sb->pid));
        writeFile(mem + "/cgroup.procs", std::to_string(sb->pid));
    } else {
        setLimit(RLIMIT_AS, static_cast<rlim_t>(lim.memoryBytes * 4));
    }
    (void)::write(gate.write.get(), "\n", 1);

    sb->pidfd =
        std::make_unique<net::posix::stream_descriptor>(ex_, os::openPidFd(sb->pid).release());
    int outFd = out.read.release();
    net::co_spawn(ex_, watchStartup(sb, outFd), net::detached);
    net::co_spawn(ex_, watchExit(sb), net::detached);
}

awaitable<void> SandboxManager::watchStartup(std::shared_ptr<Sandbox> sb, int stdoutFd) {
    net::posix::stream_descriptor d(ex_, stdoutFd);
    std::string line;
    char buf[256];
    for (;;) {
        boost::system::error_code ec;
        std::size_t n =
            co_await d.async_read_some(net::buffer(buf), net::redirect_error(use_awaitable, ec));
        line.append(buf, n);
        if (line.find('\n') != std::string::npos) break;
        if (ec || line.size() > 4096) break;
    }
    if (line.find("listening") != std::string::npos && !sb->dead) {
        sb->ready = true;
    } else if (sb->startError.empty()) {
        sb->startError =
            "the sandbox agent did not start" + (line.empty() ? std::string() : ": " + line);
    }
    sb->started->set();
    // Keep draining so the agent never blocks on a full pipe.
    for (;;) {
        boost::system::error_code ec;
        co_await d.async_read_some(net::buffer(buf), net::redirect_error(use_awaitable, ec));
        if (ec) break;
    }
}

awaitable<void> SandboxManager::watchExit(std::shared_ptr<Sandbox> sb) {
    // This launch's pid: killSandbox() resets sb->pid to -1, and waitpid(-1) would reap any child.
    const pid_t pid = sb->pid;
    const unsigned generation = sb->generation;
    auto* pidfd = sb->pidfd.get();
    for (;;) {
        boost::system::error_code ec;
        co_await pidfd->async_wait(net::posix::descriptor_base::wait_read,
                                   net::redirect_error(use_awaitable, ec));
        // Cancelled by killSandbox(), which reaps the launcher itself (pidfd may be gone by now).
        if (ec == net::error::operation_aborted) co_return;
        if (auto code = os::reapExitCode(pid)) {
            if (sb->generation != generation) co_return;
            sb->pid = -1;  // reaped: the number may be reused, never signal or wait for it again
            sb->dead = true;
            sb->ready = false;
            if (sb->startError.empty())
                sb->startError = "the sandbox agent exited with status " + std::to_string(*code);
            sb->started->set();
            co_return;
        }
        if (ec) co_return;
    }
}

awaitable<std::shared_ptr<Sandbox>> SandboxManager::ensure(const std::string& id) {
    auto it = sandboxes_.find(id);
    std::shared_ptr<Sandbox> sb;
    if (it != sandboxes_.end()) {
        sb = it->second;
        // The agent may have died a moment ago without its exit being processed yet (the
        // launcher is then a zombie): notice it now so this request gets a fresh agent.
        if (!sb->dead && sb->ready && sb->pid > 0 && !os::isAlive(sb->pid)) sb->dead = true;
        if (sb->dead) {
            killSandbox(*sb);
            launch(sb);  // the workspace on disk survives
        }
    } else if ((sb = takeWarm(id))) {
        sandboxes_[id] = sb;
        // Refill behind it, off the path of the request that took it: starting a sandbox
        // costs a few milliseconds of CPU that this request's first command would compete with.
        auto timer = std::make_shared<net::steady_timer>(ex_, std::chrono::milliseconds(20));
        timer->async_wait([this, timer, alive = alive_](boost::system::error_code) {
            if (*alive) adjustPool();
        });
    } else {
        checkCapacity();
        sb = std::make_shared<Sandbox>();
        sb->id = id;
        sb->root = cfg_.stateDir + "/sandboxes/" + id;
        sb->workspace = sb->root + "/workspace";
        sb->socket = sb->root + "/run/agent.sock";
        sandboxes_[id] = sb;
        launch(sb);
    }
    if (!sb->ready) {
        auto started = sb->started;
        bool ok = co_await started->waitUntil(std::chrono::steady_clock::now() +
                                              std::chrono::seconds(30));
        if (!ok) throw SandboxStartError("the sandbox agent did not start within 30 s");
        if (!sb->ready) throw SandboxStartError(sb->startError);
    }
    co_return sb;
}

void SandboxManager::markBroken(const std::string& id, unsigned generation) {
    auto sb = find(id);
    if (!sb || sb->generation != generation || sb->dead) return;
    // The launcher may still be alive for a moment after its agent died (or the agent may be
    // wedged, or its socket gone): waiting for it to exit would leave a window in which every
    // request fails. Kill this launch now; the next request starts a fresh one.
    killSandbox(*sb);
    if (sb->startError.empty()) sb->startError = "the sandbox agent stopped answering";
    sb->started->set();
}

void SandboxManager::killSandbox(Sandbox& sb) {
    // Its namespace (and the bucket mounts attached in it) goes with it; the host side of each
    // mount is undone here.
    for (auto& m : sb.mounts) releaseHostSide(m);
    sb.mounts.clear();
    if (sb.pid > 0) {
        // bwrap's pid namespace dies with its init; --isolation none needs the whole tree.
        os::signalTree(sb.pid, SIGKILL, true);
        if (sb.pidfd) {
            boost::system::error_code ec;
            sb.pidfd->cancel(ec);
        }
        int st;
        ::waitpid(sb.pid, &st, 0);
    }
    if (!sb.cgroupName.empty()) {
        for (const char* root : {kPidsRoot, kMemoryRoot}) {
            std::string dir = std::string(root) + "/" + sb.cgroupName;
            // Anything left in the cgroup (escaped the tree) is killed too.
            std::ifstream procs(dir + "/cgroup.procs");
            pid_t p;
            while (procs >> p) ::kill(p, SIGKILL);
            for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i)
                ::usleep(2000);
        }
    }
    sb.pid = -1;
    sb.dead = true;
    sb.ready = false;
}

void SandboxManager::destroy(const std::string& id) {
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return;
    auto sb = it->second;
    sandboxes_.erase(it);
    killSandbox(*sb);
    if (sb->startError.empty())
        sb->startError = "the sandbox was destroyed";  // for ensure() waiters
    if (sb->started) sb->started->set();
    sb->runDir = Fd();  // requests still holding the sandbox can no longer reach any socket
    std::error_code ec;
    fs::remove_all(sb->root, ec);
}

void SandboxManager::destroyAll() {
    if (poolTimer_) poolTimer_->cancel();
    poolLoopRunning_ = false;
    shutdownPrewarmed();
    while (!sandboxes_.empty()) destroy(sandboxes_.begin()->first);
}

}  // namespace sandbox::daemon
