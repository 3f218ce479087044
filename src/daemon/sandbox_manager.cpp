#include "daemon/sandbox_manager.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/base64.hpp"
#include "os/process.hpp"

namespace sandbox::daemon {
namespace fs = std::filesystem;
using net::use_awaitable;
using os::Fd;
using os::Pipe;

namespace {

// Creates `dir` (if missing) with `mode`, owned by root and `group` (-1: unchanged).
void makeDir(const std::string& dir, mode_t mode, gid_t group) {
    fs::create_directories(dir);
    if (::chown(dir.c_str(), static_cast<uid_t>(-1), group) != 0 && group != static_cast<gid_t>(-1))
        throw std::runtime_error("cannot set the group of " + dir + ": " + std::strerror(errno));
    ::chmod(dir.c_str(), mode);
}

// A listening unix socket at `path` (replacing what is there), close-on-exec. `path` goes
// through /proc/self/fd/N (Sandbox::connectPath), short whatever the id's length.
os::Fd listenAt(const std::string& path) {
    os::Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw SandboxStartError(std::string("socket: ") + std::strerror(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path)
        throw SandboxStartError("the agent's socket path is too long: " + path);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    ::unlink(path.c_str());
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd.get(), SOMAXCONN) != 0)
        throw SandboxStartError("cannot listen on " + path + ": " + std::strerror(errno));
    return fd;
}

// A pipe holding `bytes` (a BPF program), its write end closed: bwrap reads it to the end.
os::Fd programPipe(const std::string& bytes) {
    os::Pipe p = os::Pipe::make(false);
    if (bytes.size() > 65536) throw SandboxStartError("seccomp program too large for a pipe");
    if (::write(p.write.get(), bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
        throw SandboxStartError(std::string("writing the seccomp program: ") +
                                std::strerror(errno));
    return std::move(p.read);
}

// Whether `pid` is a running sandboxd (a daemon group of that pid is still in use).
bool daemonAlive(pid_t pid) {
    if (pid == ::getpid()) return false;  // a group with our pid is a dead predecessor's
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    return comm && std::getline(comm, name) && name == "sandboxd";
}

std::string mib(std::uint64_t bytes) {
    return std::to_string(bytes >> 20) + " MiB";
}

}  // namespace

std::string IsolationReport::line() const {
    std::string out = mode;
    if (!identity.empty()) out += "; " + identity;
    if (mode != "none") out += seccomp ? "; seccomp" : "; no seccomp";
    out += "; cgroups: " + cgroups + "; workspace: " + workspace;
    return out;
}

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

SandboxManager::SandboxManager(net::any_io_executor ex, DaemonConfig cfg)
    : ex_(ex),
      cfg_(std::move(cfg)),
      cgroups_(os::Cgroups::detect(os::realSyscalls(), cfg_.cgroupRoot)) {
    const bool bwrap = cfg_.isolation == Isolation::Bwrap;
    privileged_ = ::geteuid() == 0 && bwrap;
    if (privileged_) {
        ids_.emplace(cfg_.uidFirst, cfg_.uidCount);
        if (std::string c = ids_->conflicts(); !c.empty())
            throw std::runtime_error("the sandbox uid range " + ids_->describe() + " overlaps " +
                                     c + "; choose another with --uid-range");
    }
    // The state directory: searchable (never listable) by the sandboxes' shared group, so that
    // bubblewrap, running as a sandbox's uid, reaches its workspace and the agent; nobody else
    // gets in. Without root everything is sandboxd's own and private.
    const gid_t shared = privileged_ ? ids_->sharedGroup() : static_cast<gid_t>(-1);
    const mode_t reach = privileged_ ? 0710 : 0700;
    makeDir(cfg_.stateDir, reach, shared);
    for (const char* sub : {"/sandboxes", "/pool", "/bin"})
        makeDir(cfg_.stateDir + sub, reach, shared);
    makeDir(cfg_.stateDir + "/mounts", 0700, static_cast<gid_t>(-1));
    if (privileged_) {
        std::string blocked = firstUnsearchable(cfg_.stateDir, shared);
        if (!blocked.empty())
            throw std::runtime_error(
                "sandboxes cannot reach the state directory " + cfg_.stateDir + ": " + blocked +
                " is not searchable by others (make it mode 0711 or choose another --state-dir)");
    }
    // What a killed sandboxd left: bucket mounts, workspaces (their sandboxes died with it).
    cleanStaleMounts(cfg_.stateDir + "/mounts");
    for (const char* sub : {"/sandboxes", "/pool"}) {
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(cfg_.stateDir + sub, ec)) {
            unmountWorkspace(e.path().string() + "/workspace");
            fs::remove_all(e.path(), ec);
        }
    }
    agentStaged_ = bwrap ? stageAgent(cfg_.agentPath, cfg_.stateDir + "/bin") : cfg_.agentPath;
    if (bwrap) seccomp_ = buildSeccompPrograms();

    if (cgroups_.version() != os::CgroupVersion::None) {
        cgroups_.removeStale(kCgroupPrefix, daemonAlive);
        cgroups_.open(kCgroupPrefix + std::to_string(::getpid()));
    }
    if (cfg_.limits.cpus > 0 && cgroups_.version() != os::CgroupVersion::None &&
        !cgroups_.cpuAvailable())
        cfg_.limits.cpus = 0;  // reported below: no CPU limit on this host

    report_.mode = bwrap ? "bwrap" : "none";
    if (privileged_)
        report_.identity = "per-sandbox host uids " + ids_->describe();
    else
        report_.identity = "sandboxd's uid " + std::to_string(::geteuid());
    report_.seccomp = bwrap;
    report_.cgroups = cgroups_.describe();
    if (cgroups_.version() != os::CgroupVersion::None && cfg_.limits.cpus <= 0)
        report_.cgroups += ", no CPU limit";
    report_.workspace = privileged_ && cfg_.limits.diskBytes > 0
                            ? "tmpfs of " + mib(cfg_.limits.diskBytes) + " per sandbox"
                            : "a directory (no size limit)";
}

SandboxManager::~SandboxManager() {
    *alive_ = false;
    destroyAll();
    cgroups_.close();
}

std::shared_ptr<Sandbox> SandboxManager::find(const std::string& id) const {
    auto it = sandboxes_.find(id);
    return it == sandboxes_.end() ? nullptr : it->second;
}

FileOwner SandboxManager::ownerOf(const Sandbox& sb) const {
    if (!sb.identity) return {};
    return {sb.identity->uid, sb.identity->gid};
}

std::string SandboxManager::probeIsolation() {
    if (cfg_.isolation != Isolation::Bwrap) return {};
    // A sandbox of its own, with a throwaway identity and workspace, started as every sandbox
    // is (same launcher, same bubblewrap options, the seccomp filters), running /bin/true.
    Sandbox sb;
    sb.id = "probe";
    sb.root = cfg_.stateDir + "/pool/probe";
    sb.workspace = sb.root + "/workspace";
    std::string result;
    try {
        prepare(sb);
        os::Pipe err = os::Pipe::make(false);
        os::Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
        Launch l = launchOf(sb, {"/bin/true"});
        l.spawn.fds.insert(l.spawn.fds.end(),
                           {{0, devnull.get()}, {1, devnull.get()}, {2, err.write.get()}});
        pid_t pid = os::spawnConfined(l.spawn, l.confine);
        err.write.reset();
        std::string text;
        char buf[512];
        ssize_t n;
        while ((n = ::read(err.read.get(), buf, sizeof buf)) > 0 && text.size() < 4096)
            text.append(buf, static_cast<size_t>(n));
        int status = 0;
        ::waitpid(pid, &status, 0);
        os::forgetChild(pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
            result = text.empty() ? "bwrap exited with status " + std::to_string(status) : text;
        }
    } catch (const std::exception& e) {
        result = e.what();
    }
    teardown(sb);
    return result;
}

void SandboxManager::prepare(Sandbox& sb) {
    const gid_t shared = privileged_ ? ids_->sharedGroup() : static_cast<gid_t>(-1);
    makeDir(sb.root, privileged_ ? 0710 : 0700, shared);
    makeDir(sb.root + "/run", 0700, static_cast<gid_t>(-1));  // sandboxd's alone
    if (privileged_ && !sb.identity) {
        sb.identity = ids_->acquire();
        if (!sb.identity)
            throw SandboxStartError("no free sandbox uid left in " + ids_->describe());
    }
    if (!fs::exists(sb.workspace)) {
        fs::create_directory(sb.workspace);
        ::chmod(sb.workspace.c_str(), 0700);
    }
    if (privileged_ && cfg_.limits.diskBytes > 0 && !sb.workspaceMounted) {
        try {
            mountWorkspace(sb.workspace, cfg_.limits.diskBytes, *sb.identity);
        } catch (const std::exception& e) {
            throw SandboxStartError(e.what());
        }
        sb.workspaceMounted = true;
    } else if (sb.identity && !sb.workspaceMounted) {
        ::chown(sb.workspace.c_str(), sb.identity->uid, sb.identity->gid);
    }
}

void SandboxManager::teardown(Sandbox& sb) {
    killSandbox(sb);
    sb.runDir = os::Fd();  // requests still holding the sandbox can no longer reach any socket
    if (sb.workspaceMounted) unmountWorkspace(sb.workspace);
    sb.workspaceMounted = false;
    std::error_code ec;
    fs::remove_all(sb.root, ec);
    if (sb.identity && ids_) ids_->release(sb.identity->uid);
    sb.identity.reset();
}

SandboxManager::Launch SandboxManager::launchOf(const Sandbox& sb,
                                                const std::vector<std::string>& command) {
    Launch l;
    l.spawn.cwd = sb.workspace;
    if (cfg_.isolation == Isolation::Bwrap) {
        l.seccomp[0] = programPipe(seccomp_.allowList);
        l.seccomp[1] = programPipe(seccomp_.ioctlDenials);
        const Limits& lim = cfg_.limits;
        BwrapSpec spec{sb.workspace, agentStaged_, lim.tmpBytes, lim.shmBytes, {4, 5}, {}};
        // With outbound networking: its resolver (dns), the host's loopback and the allowed
        // hosts by name.
        if (sb.network.outbound) {
            auto write = [&](const std::string& name, const std::string& text, const char* inside) {
                std::string path = sb.root + "/" + name;
                std::ofstream(path, std::ios::trunc) << text;
                ::chmod(path.c_str(), 0644);
                spec.etcFiles.emplace_back(path, inside);
            };
            if (sb.network.has(core::wire::NetworkRule::Kind::Dns))
                write("resolv.conf", kOutboundResolvConf, "/etc/resolv.conf");
            write("hosts", hostsFile(sb.network), "/etc/hosts");
        }
        l.spawn.argv = bwrapArgv(spec, command);
        l.spawn.env = {"PATH=/usr/bin:/bin"};
        l.spawn.fds = {{4, l.seccomp[0].get()}, {5, l.seccomp[1].get()}};
        // Who the launcher becomes before bubblewrap runs (bubblewrap itself runs
        // unprivileged), and a session keyring of its own.
        if (sb.identity) {
            l.confine.uid = sb.identity->uid;
            l.confine.gid = sb.identity->gid;
            l.confine.groups = {ids_->sharedGroup()};
        }
        l.confine.newSessionKeyring = true;
    } else {
        l.spawn.argv = command;
        l.spawn.env = os::environWith({{"SANDBOX_API_KEY", std::nullopt}, {"HOME", sb.workspace}});
    }
    return l;
}

void SandboxManager::launch(const std::shared_ptr<Sandbox>& sb) {
    prepare(*sb);
    std::string runDir = sb->root + "/run";
    sb->runDir = os::Fd(::open(runDir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    // The agent's socket is made here, in a directory the sandbox never sees, and handed over
    // as fd 3: nothing inside can replace it or point sandboxd elsewhere.
    os::Fd listener = listenAt(sb->connectPath());
    sb->ready = sb->dead = false;
    ++sb->generation;
    sb->runtime = ++launchSeq_;
    sb->network = networkOf(sb->id);
    sb->startError.clear();
    sb->started = std::make_shared<server::Event>(ex_);

    const Limits& lim = cfg_.limits;
    Launch l = cfg_.isolation == Isolation::Bwrap
                   ? launchOf(*sb, {"/run/sandbox-agent", "--listen", "fd:3", "--workspace",
                                    "/workspace", "--runtime-dir", "/run/agent"})
                   // Its named pipes under the sandbox's directory: they go with it.
                   : launchOf(*sb, {cfg_.agentPath, "--listen", "fd:3", "--workspace",
                                    sb->workspace, "--runtime-dir", sb->root + "/agent"});
    os::Pipe out = os::Pipe::make();
    os::Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    // stderr too: bubblewrap's own failure ("bwrap: ...") becomes the start error.
    l.spawn.fds.insert(
        l.spawn.fds.end(),
        {{0, devnull.get()}, {1, out.write.get()}, {2, out.write.get()}, {3, listener.get()}});
    // Before bubblewrap (or the agent) runs, the launcher also joins the sandbox's groups and
    // takes its limits, so no process of the sandbox ever runs outside them.
    std::vector<os::Fd> joinFds;
    if (cgroups_.version() != os::CgroupVersion::None) {
        sb->cgroupName = sb->id + "." + std::to_string(sb->generation);
        std::vector<std::string> procs;
        try {
            procs = cgroups_.create(sb->cgroupName, {lim.memoryBytes, lim.maxProcesses, lim.cpus});
        } catch (const std::exception& e) {
            sb->cgroupName.clear();
            throw SandboxStartError(e.what());
        }
        for (const auto& p : procs) {
            joinFds.emplace_back(::open(p.c_str(), O_WRONLY | O_CLOEXEC));
            if (!joinFds.back()) throw SandboxStartError("cannot open " + p);
            l.confine.joinCgroups.push_back(joinFds.back().get());
        }
    }
    l.confine.rlimits = {{RLIMIT_NOFILE, static_cast<unsigned long>(lim.maxOpenFiles)},
                         {RLIMIT_FSIZE, static_cast<unsigned long>(lim.maxFileBytes)},
                         {RLIMIT_CORE, 0}};
    if (sb->cgroupName.empty()) {
        l.confine.rlimits.emplace_back(RLIMIT_AS, static_cast<unsigned long>(lim.memoryBytes * 4));
        // Per uid: only a sandbox's own uid makes it a per-sandbox limit.
        if (sb->identity)
            l.confine.rlimits.emplace_back(RLIMIT_NPROC,
                                           static_cast<unsigned long>(lim.maxProcesses));
    }
    try {
        sb->pid = os::spawnConfined(l.spawn, l.confine);
    } catch (const std::system_error& e) {
        if (!sb->cgroupName.empty()) cgroups_.destroy(sb->cgroupName);
        sb->cgroupName.clear();
        throw SandboxStartError(std::string("cannot start the sandbox: ") + e.what());
    }

    sb->pidfd =
        std::make_unique<net::posix::stream_descriptor>(ex_, os::openPidFd(sb->pid).release());
    out.write.reset();  // EOF on the read end once the sandbox's copies are gone
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
    if (line.find("listening") != std::string::npos && !sb->dead && sb->network.outbound) {
        // The network comes before the sandbox is ready: no code of it has run yet.
        const unsigned generation = sb->generation;
        std::string failure;
        try {
            Outbound o = co_await startOutbound(sandboxNamespacePid(sb->pid), sb->network);
            if (sb->generation == generation && !sb->dead)
                sb->outbound = std::move(o);
            else
                stopOutbound(o);
        } catch (const std::exception& e) {
            failure = e.what();
        }
        if (!failure.empty() && sb->generation == generation) {
            killSandbox(*sb);
            sb->startError = "cannot give the sandbox its network: " + failure;
        }
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

void SandboxManager::launchOrMarkDead(const std::shared_ptr<Sandbox>& sb) {
    try {
        launch(sb);
    } catch (const std::exception& e) {
        // The next request tries again from scratch.
        killSandbox(*sb);
        sb->startError = e.what();
        if (sb->started) sb->started->set();
        throw SandboxStartError(e.what());
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
            launchOrMarkDead(sb);  // the workspace survives
        }
    } else if (!networkOf(id).outbound && (sb = takeWarm(id))) {  // warm ones have no network
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
        launchOrMarkDead(sb);
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
    stopOutbound(sb.outbound);
    if (sb.pid > 0) {
        // bwrap's pid namespace dies with its init; --isolation none needs the whole tree.
        os::signalTree(sb.pid, SIGKILL, true);
        if (sb.pidfd) {
            boost::system::error_code ec;
            sb.pidfd->cancel(ec);
        }
        int st;
        ::waitpid(sb.pid, &st, 0);
        os::forgetChild(sb.pid);
    }
    // Anything left in its groups (nothing should be: the pid namespace died with its init) is
    // killed, and the groups go.
    if (!sb.cgroupName.empty()) cgroups_.destroy(sb.cgroupName);
    sb.cgroupName.clear();
    sb.pid = -1;
    sb.dead = true;
    sb.ready = false;
}

void SandboxManager::destroy(const std::string& id) {
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return;
    auto sb = it->second;
    sandboxes_.erase(it);
    ports_.launchEnded(sb->id, true);  // its forwarded connections and tunnels end with it
    teardown(*sb);
    if (sb->startError.empty())
        sb->startError = "the sandbox was destroyed";  // for ensure() waiters
    if (sb->started) sb->started->set();
}

const core::wire::NetworkPolicy& SandboxManager::networkOf(const std::string& id) const {
    auto it = networks_.find(id);
    return it == networks_.end() ? cfg_.network : it->second;
}

std::string SandboxManager::outboundUnavailable() const {
    return daemon::outboundUnavailable(privileged_, cfg_.isolation == Isolation::Bwrap);
}

std::string SandboxManager::setNetwork(const std::string& id,
                                       const core::wire::NetworkPolicy& policy) {
    if (policy.outbound)
        if (std::string why = outboundUnavailable(); !why.empty()) return why;
    networks_[id] = policy;
    auto it = sandboxes_.find(id);
    if (it != sandboxes_.end() && !it->second->dead && it->second->network != policy)
        markBroken(id, it->second->generation);  // the next request relaunches it, workspace kept
    return "";
}

void SandboxManager::destroyAll() {
    if (poolTimer_) poolTimer_->cancel();
    poolLoopRunning_ = false;
    shutdownPrewarmed();
    while (!sandboxes_.empty()) destroy(sandboxes_.begin()->first);
}

}  // namespace sandbox::daemon
