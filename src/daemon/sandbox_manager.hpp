#pragma once
// Sandboxes: one per id, each an isolated sandbox-agent (bubblewrap namespaces, or a plain
// child with --isolation none). sandboxd makes each agent's listening socket (under the
// sandbox's state directory, where the sandbox cannot reach) and hands it over as fd 3.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/wire_bridge.hpp"
#include "daemon/isolation.hpp"
#include "daemon/mounts.hpp"
#include "daemon/network.hpp"
#include "daemon/ports.hpp"
#include "daemon/seccomp_policy.hpp"
#include "daemon/workspace_fs.hpp"
#include "os/cgroup.hpp"
#include "os/process.hpp"
#include "server/async_util.hpp"

namespace sandbox::daemon {

using server::awaitable;
namespace net = boost::asio;

enum class Isolation { Bwrap, None };

/// Per-sandbox resource limits.
struct Limits {
    std::uint64_t memoryBytes =
        1024ull * 1024 * 1024;  ///< cgroup memory limit (RLIMIT_AS fallback: 4x)
    int maxProcesses = 512;     ///< cgroup pids.max (RLIMIT_NPROC fallback)
    double cpus = 1.0;          ///< CPU time per period, in CPUs (cgroup cpu); 0: unlimited
    int maxOpenFiles = 4096;    ///< RLIMIT_NOFILE
    std::uint64_t maxFileBytes =
        4ull * 1024 * 1024 * 1024;  ///< RLIMIT_FSIZE: largest file a sandbox can write
    /// Size of the workspace (a tmpfs of its own; sandboxd as root only); 0: a plain directory.
    std::uint64_t diskBytes = 2048ull * 1024 * 1024;
    std::uint64_t tmpBytes = 1024ull * 1024 * 1024;  ///< size of the sandbox's /tmp
    std::uint64_t shmBytes = 64ull * 1024 * 1024;    ///< size of the sandbox's /dev/shm
    /// The cgroup limits were asked for on the command line: without cgroups sandboxd refuses
    /// to start instead of falling back to rlimits.
    bool cgroupLimitsRequired = false;
};

struct DaemonConfig {
    std::string stateDir;
    std::string agentPath;
    Isolation isolation = Isolation::Bwrap;
    Limits limits;
    std::string apiKey;
    core::wire::PoolConfig pool;  ///< the warm pool (WARM_POOL_* variables)
    /// Host ids for sandboxes when sandboxd runs as root (--uid-range).
    uid_t uidFirst = IdentityRange::kDefaultFirst;
    std::uint32_t uidCount = IdentityRange::kDefaultCount;
    std::string cgroupRoot = "/sys/fs/cgroup";  ///< where the cgroup hierarchies are mounted
    /// The network of sandboxes that were given none of their own (--network, --network-allow).
    core::wire::NetworkPolicy network;
};

/// What protects sandboxes on this host, as /health and the start-up line report it.
struct IsolationReport {
    std::string mode;      ///< "bwrap" or "none"
    std::string identity;  ///< "per-sandbox host uids A-B" or "sandboxd's uid N"
    bool seccomp = false;
    std::string cgroups;    ///< Cgroups::describe(), or "none (...)"
    std::string workspace;  ///< "tmpfs of N MiB per sandbox" or "a directory (no size limit)"
    /// One line: "bwrap; per-sandbox host uids ...; seccomp; cgroup v1 (...); workspace ...".
    std::string line() const;
};

/// Thrown when a sandbox cannot be started or reached (rendered as 502 pool_error).
class SandboxStartError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Thrown when WARM_POOL_MAX_INSTANCES sandboxes exist and none is warm (503
/// capacity_exceeded, with the reference's message).
class CapacityError : public SandboxStartError {
  public:
    using SandboxStartError::SandboxStartError;
};

class Sandbox {
  public:
    std::string id;
    std::string root;       ///< stateDir/sandboxes/<id>
    std::string workspace;  ///< root/workspace, mounted at /workspace
    std::string socket;     ///< the agent's unix socket, as seen from the host
    os::Fd runDir;          ///< O_PATH handle of the socket's directory
    /// The path sandboxd connects to: the socket through runDir, short whatever the state
    /// directory and id lengths (a sockaddr_un path has at most 107 bytes).
    std::string connectPath() const {
        return "/proc/self/fd/" + std::to_string(runDir.get()) + "/agent.sock";
    }
    pid_t pid = -1;          ///< the launcher (bwrap, or the agent itself)
    std::string cgroupName;  ///< non-empty when cgroup limits are applied
    /// The host uid and gid it runs as (sandboxd as root; kept across relaunches).
    std::optional<HostIdentity> identity;
    bool workspaceMounted = false;  ///< its workspace is a tmpfs of its own
    unsigned generation = 0;        ///< bumped at every (re)launch
    /// Names the launch across the daemon (unlike generation, never reused by a sandbox made
    /// again with the same id): what an exposed port is active for (ports.hpp).
    std::uint64_t runtime = 0;
    bool ready = false;
    bool dead = false;
    bool primed = false;  ///< a warm-pool sandbox whose agent has run its first command
    std::string startError;
    std::shared_ptr<server::Event> started;
    std::unique_ptr<net::posix::stream_descriptor> pidfd;
    std::vector<BucketMount> mounts;    ///< buckets mounted into this launch (mounts.hpp)
    core::wire::NetworkPolicy network;  ///< this launch's network (network.hpp)
    Outbound outbound;                  ///< its slirp4netns, when outbound
    unsigned mountSeq = 0;              ///< names the host directories of its mounts
};

class SandboxManager {
  public:
    SandboxManager(net::any_io_executor ex, DaemonConfig cfg);
    ~SandboxManager();

    const DaemonConfig& config() const { return cfg_; }
    /// Why outbound networking cannot be given here ("" when it can): see
    /// daemon::outboundUnavailable.
    std::string outboundUnavailable() const;
    /// The network policy of sandbox `id`: its own (setNetwork), else the daemon's default.
    const core::wire::NetworkPolicy& networkOf(const std::string& id) const;
    /// Sets sandbox `id`'s network policy. A running sandbox with another policy is stopped
    /// (its workspace kept) and the next request starts it under the new one. Returns "" or why
    /// the policy cannot be had here (outbound networking unavailable).
    std::string setNetwork(const std::string& id, const core::wire::NetworkPolicy& policy);
    /// Exposed ports, preview URLs and tunnels (ports.hpp).
    PortRegistry& ports() { return ports_; }
    const PortRegistry& ports() const { return ports_; }
    /// The running sandbox for `id`, starting (or restarting) its agent when needed. Throws
    /// SandboxStartError.
    awaitable<std::shared_ptr<Sandbox>> ensure(const std::string& id);
    /// The sandbox if it is known (running or not).
    std::shared_ptr<Sandbox> find(const std::string& id) const;
    /// Kills every process of the sandbox and removes its state. Unknown ids: no-op.
    void destroy(const std::string& id);
    /// Destroys every sandbox (shutdown).
    void destroyAll();
    /// After its agent failed a request (unreachable, or the connection broke mid-response):
    /// kills that launch of the sandbox, so the next ensure() restarts it (the workspace on disk
    /// survives). A later launch than `generation` is left alone.
    void markBroken(const std::string& id, unsigned generation);
    std::size_t count() const { return sandboxes_.size(); }
    /// Whether cgroup limits are in effect (else rlimits only).
    bool cgroupsAvailable() const { return cgroups_.version() != os::CgroupVersion::None; }
    /// Starts a throwaway sandbox running /bin/true with every isolation feature in use: ""
    /// when that works, else why not (bubblewrap's own message).
    std::string probeIsolation();
    const IsolationReport& isolation() const { return report_; }
    /// Who owns what the host side writes into a sandbox's workspace (its identity; unchanged
    /// when it has none).
    FileOwner ownerOf(const Sandbox& sb) const;

    // ---- warm pool (pool.cpp) ----
    /// GET /v1/pool/stats.
    core::wire::PoolStats poolStats() const;
    /// POST /v1/pool/prime: starts the refresh loop (every refreshInterval ms) if it is not
    /// running and tops the pool up to its target now. Also called at start-up when the
    /// target is positive.
    void primePool();
    /// POST /v1/pool/shutdown-prewarmed: stops every warm (unassigned) sandbox.
    void shutdownPrewarmed();

  private:
    /// How a sandbox's launcher is started: the program (bubblewrap running `command`, or
    /// `command` itself without isolation), its seccomp programs on fds 4 and 5, and what it
    /// does to itself before (identity, session keyring). The caller adds fds 0-3, cgroups and
    /// rlimits.
    struct Launch {
        os::SpawnOptions spawn;
        os::Confinement confine;
        os::Fd seccomp[2];
    };
    Launch launchOf(const Sandbox& sb, const std::vector<std::string>& command);
    void launch(const std::shared_ptr<Sandbox>& sb);
    /// launch(); a failure leaves the sandbox dead (restarted by the next ensure()) and is
    /// rethrown as SandboxStartError.
    void launchOrMarkDead(const std::shared_ptr<Sandbox>& sb);
    /// Sets up the directories, identity and workspace of a sandbox about to be launched.
    void prepare(Sandbox& sb);
    /// Kills the sandbox and undoes prepare(): workspace unmounted, directory removed, identity
    /// released.
    void teardown(Sandbox& sb);
    /// A warm sandbox bound to `id` (its directory renamed to the id's), or null.
    std::shared_ptr<Sandbox> takeWarm(const std::string& id);
    /// Throws CapacityError when a new sandbox would exceed the configured ceiling.
    void checkCapacity() const;
    /// Drops dead warm sandboxes, starts missing ones, stops surplus ones.
    void adjustPool();
    awaitable<void> poolLoop();
    awaitable<void> primeWarm(std::shared_ptr<Sandbox> sb);
    void stopWarm(const std::shared_ptr<Sandbox>& sb);
    awaitable<void> watchStartup(std::shared_ptr<Sandbox> sb, int stdoutFd);
    awaitable<void> watchExit(std::shared_ptr<Sandbox> sb);
    void killSandbox(Sandbox& sb);

    net::any_io_executor ex_;
    DaemonConfig cfg_;
    std::map<std::string, std::shared_ptr<Sandbox>> sandboxes_;
    os::Cgroups cgroups_;
    bool privileged_ = false;           ///< running as root: per-sandbox ids, tmpfs workspaces
    std::optional<IdentityRange> ids_;  ///< when privileged_
    SeccompPrograms seccomp_;           ///< when isolating with bwrap
    std::string agentStaged_;           ///< the agent binary as sandboxes bind it
    IsolationReport report_;
    std::vector<std::shared_ptr<Sandbox>> warm_;  ///< oldest first
    unsigned poolSeq_ = 0;
    bool poolLoopRunning_ = false;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::unique_ptr<net::steady_timer> poolTimer_;
    std::uint64_t launchSeq_ = 0;
    std::map<std::string, core::wire::NetworkPolicy> networks_;  ///< setNetwork()'s
    PortRegistry ports_{*this};
};

/// A new sandbox id: 16 random bytes as unpadded lower-case base32 (26 characters).
std::string newSandboxId();
/// ^[a-z2-7]{1,128}$
bool isValidSandboxId(std::string_view id);
/// The name of a daemon's cgroup: "sandboxd-<pid>" (removeStale() finds those left behind).
inline constexpr const char* kCgroupPrefix = "sandboxd-";

}  // namespace sandbox::daemon
