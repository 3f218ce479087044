#pragma once
// The pieces of a sandbox's isolation that sandboxd sets up around bubblewrap (see
// docs/security.md for the whole picture):
//  - a host identity per sandbox: when sandboxd is root, each sandbox runs as its own uid and gid
//    from a range no account of the host uses (uid 0 inside the sandbox maps to it), so nothing
//    of the host is the sandbox's, and sandboxes are not each other's;
//  - a size-capped tmpfs as each sandbox's /workspace (the disk limit), owned by that identity;
//  - the command line of bubblewrap itself: every namespace, no capabilities, the agent as the
//    pid namespace's init (it cannot be stopped, killed or traced from inside), read-only system
//    directories, private /tmp and /dev/shm of bounded size, the seccomp filters.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sandbox::daemon {

/// The host uid and gid a sandbox's processes run as.
struct HostIdentity {
    uid_t uid = 0;
    gid_t gid = 0;
};

/// Host ids for sandboxes: [first, first + count). `first` itself is the group every sandbox's
/// launcher carries as a supplementary group (so that bubblewrap, running as the sandbox's uid,
/// can reach sandboxd's state directory, which is searchable by that group alone); each
/// sandbox takes one of the others as its uid and gid.
class IdentityRange {
  public:
    /// The default range: 65536 ids from 0x70000000, above the ranges systemd-nspawn and
    /// /etc/subuid allocate from.
    static constexpr uid_t kDefaultFirst = 0x70000000u;
    static constexpr std::uint32_t kDefaultCount = 65536;

    IdentityRange(uid_t first = kDefaultFirst, std::uint32_t count = kDefaultCount)
        : first_(first), count_(count) {}
    gid_t sharedGroup() const { return first_; }
    /// The lowest free id, or nullopt when all are in use.
    std::optional<HostIdentity> acquire();
    void release(uid_t uid);
    /// "first-last" of the ids sandboxes get.
    std::string describe() const;
    /// "" when no user, group or subordinate id range of this host (/etc/passwd, /etc/group,
    /// /etc/subuid, /etc/subgid) overlaps the range; else the first overlap found.
    std::string conflicts(const std::string& etc = "/etc") const;

  private:
    uid_t first_;
    std::uint32_t count_;
    std::set<uid_t> used_;
};

/// What bubblewrap is given to build one sandbox.
struct BwrapSpec {
    std::string workspace;        ///< host directory bound at /workspace
    std::string agent;            ///< host path of the program bound at /run/sandbox-agent
    std::uint64_t tmpBytes = 0;   ///< size of /tmp (0: unbounded)
    std::uint64_t shmBytes = 0;   ///< size of /dev/shm (0: unbounded)
    std::vector<int> seccompFds;  ///< BPF programs, read by bwrap (--add-seccomp-fd)
    /// Host files bound read-only over files of the host's /etc (host path, sandbox path): a
    /// sandbox's own resolv.conf and hosts when it has outbound networking.
    std::vector<std::pair<std::string, std::string>> etcFiles;
};

/// bwrap's argv (from "/usr/bin/bwrap") running `command` inside the sandbox.
std::vector<std::string> bwrapArgv(const BwrapSpec& spec, const std::vector<std::string>& command);

/// Mounts a tmpfs of `bytes` at `dir` (an existing, empty directory), root directory mode 0700
/// owned by `id`, nosuid and nodev. Throws std::runtime_error.
void mountWorkspace(const std::string& dir, std::uint64_t bytes, HostIdentity id);

/// Unmounts `dir` (lazily: what still uses it keeps it until done). False when nothing was
/// mounted there.
bool unmountWorkspace(const std::string& dir);

/// A copy (a hard link when possible) of `program` at `dir`/sandbox-agent, readable and
/// executable by all, so that bubblewrap running as a sandbox's uid can bind it whatever the
/// permissions on the way to the original. Returns its path; throws std::runtime_error.
std::string stageAgent(const std::string& program, const std::string& dir);

/// "" when every directory from "/" down to `dir` can be searched by group `gid` (as a member of
/// no other group, and not their owner), else the first one that cannot.
std::string firstUnsearchable(const std::string& dir, gid_t gid);

}  // namespace sandbox::daemon
