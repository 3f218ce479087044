#pragma once
// The system calls of the OS library that tests must see or steer, behind one seam: a table of
// virtual functions, real by default (realSyscalls()), replaced by a fake in unit tests so that
// kernel-shaped edge cases (a cgroup that stays busy, a v2 hierarchy this host does not have)
// are tested without the kernel.
#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::os {

class Syscalls {
  public:
    virtual ~Syscalls() = default;
    /// open(O_WRONLY), one write(2) of `data`, close: 0 or -errno. (cgroup files take one value
    /// per write, and report a refused value as the write's error.)
    virtual int writeFile(const std::string& path, std::string_view data);
    /// The whole file, or nullopt when it cannot be read.
    virtual std::optional<std::string> readFile(const std::string& path);
    /// mkdir(2): 0 or -errno.
    virtual int makeDir(const std::string& path, mode_t mode);
    /// rmdir(2): 0 or -errno.
    virtual int removeDir(const std::string& path);
    /// Names of the subdirectories of `path` (not following symbolic links); empty on error.
    virtual std::vector<std::string> listDirs(const std::string& path);
    /// Whether `path` exists (following symbolic links).
    virtual bool exists(const std::string& path);
    /// Whether `path` is the root of a cgroup2 file system (statfs magic).
    virtual bool isCgroup2Mount(const std::string& path);
    /// kill(2): 0 or -errno.
    virtual int sendSignal(pid_t pid, int sig);
    /// Waits about `microseconds` (a bounded retry's pause).
    virtual void pause(unsigned microseconds);
};

/// The real system calls.
Syscalls& realSyscalls();

}  // namespace sandbox::os
