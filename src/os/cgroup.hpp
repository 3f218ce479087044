#pragma once
// Control groups for sandboxes: memory, process-count and CPU limits, and teardown that leaves
// no process behind, on cgroup v2 (the unified hierarchy: Debian 12 and most distributions
// today) and on cgroup v1 (separate memory, pids and cpu hierarchies, as some hosts still
// mount them). Which one a host offers is found at start (Cgroups::detect).
//
// Layout: one group per daemon, named by the daemon (sandboxd uses "sandboxd-<pid>"), with one
// child group per sandbox:
//   v2: <root>/<daemon>/<sandbox>                 (memory.max, memory.swap.max, pids.max, cpu.max)
//   v1: <root>/{memory,pids,cpu}/<daemon>/<sandbox> (memory.limit_in_bytes, memory.memsw...,
//                                                   pids.max, cpu.cfs_quota_us)
// A process joins by writing "0" (itself) to each of the sandbox's cgroup.procs files, which a
// sandbox's launcher does before it runs anything of the sandbox. Every file access goes through
// the Syscalls seam, so both versions are unit-tested against a cgroupfs-shaped fake.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "os/syscalls.hpp"

namespace sandbox::os {

enum class CgroupVersion { None, V1, V2 };

/// The limits of one sandbox's group; 0 leaves a resource unlimited.
struct CgroupLimits {
    std::uint64_t memoryBytes = 0;  ///< memory ceiling, swap included (no swapping past it)
    std::int64_t maxProcesses = 0;  ///< processes and threads at once (pids.max)
    double cpus = 0;                ///< CPU time per scheduling period, in CPUs (0.5: half a core)
};

class Cgroups {
  public:
    /// The CFS period used for CPU limits (100 ms, the kernel's default).
    static constexpr std::int64_t kCpuPeriodUs = 100000;

    /// What the host offers under `root` (normally /sys/fs/cgroup): v2 when `root` is a cgroup2
    /// mount whose cgroup.controllers lists memory and pids (cpu when offered); else v1 when
    /// the memory and pids hierarchies are mounted at root/memory and root/pids (cpu at
    /// root/cpu when mounted); else none, and whyUnavailable() says why.
    static Cgroups detect(Syscalls& sys = realSyscalls(), std::string root = "/sys/fs/cgroup");

    CgroupVersion version() const { return version_; }
    /// Whether CPU limits can be applied (the cpu controller is there).
    bool cpuAvailable() const { return cpu_; }
    /// "cgroup v2 (memory, pids, cpu)", "cgroup v1 (memory, pids)", or "none (<why>)".
    std::string describe() const;
    /// Why no cgroups are used ("" when they are).
    const std::string& whyUnavailable() const { return why_; }

    /// Creates this daemon's group `name` in each hierarchy it uses (v2: with the memory, pids
    /// and cpu controllers enabled for its children). False when that fails; the version is then
    /// None and whyUnavailable() says what failed.
    bool open(const std::string& name);

    /// Creates the group of one sandbox with `limits` and returns the cgroup.procs files a
    /// process writes "0" to in order to join it. Throws std::runtime_error naming the file that
    /// refused its value (nothing is left behind).
    std::vector<std::string> create(const std::string& child, const CgroupLimits& limits);

    /// Kills every process of the sandbox's group (v2: cgroup.kill; v1, and v2 kernels before
    /// 5.14: SIGKILL to each member until none is left) and removes the group. False when the
    /// group is still there after a bounded wait.
    bool destroy(const std::string& child);

    /// The directory of the sandbox's group in the hierarchy of `controller` ("memory", "pids"
    /// or "cpu"; ignored on v2).
    std::string path(const std::string& child, const std::string& controller = "pids") const;

    /// Removes this daemon's group (its sandbox groups must be destroyed first).
    void close();

    /// Groups `prefix`<pid> that daemons left behind when they were killed: every one whose pid
    /// does not name a live daemon (`alive(pid)` false) has its sandboxes' processes killed and
    /// its groups removed. Returns how many daemon groups were removed.
    int removeStale(const std::string& prefix, const std::function<bool(pid_t)>& alive);

  private:
    Cgroups(Syscalls& sys, std::string root) : sys_(&sys), root_(std::move(root)) {}
    /// The hierarchy roots in use (v1: one per controller; v2: the root).
    std::vector<std::string> hierarchies() const;
    /// Kills every process in the group at `dir` and removes it (with its child groups).
    bool killAndRemove(const std::vector<std::string>& dirs);
    void setNone(std::string why);

    Syscalls* sys_;
    std::string root_;
    CgroupVersion version_ = CgroupVersion::None;
    bool cpu_ = false;
    std::string why_;
    std::string name_;  ///< this daemon's group, once open
};

}  // namespace sandbox::os
