#include "daemon/isolation.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "os/process.hpp"

namespace sandbox::daemon {
namespace fs = std::filesystem;

std::optional<HostIdentity> IdentityRange::acquire() {
    // The first id is the shared group, never a sandbox's.
    for (std::uint32_t i = 1; i < count_; ++i) {
        uid_t id = first_ + i;
        if (used_.insert(id).second) return HostIdentity{id, static_cast<gid_t>(id)};
    }
    return std::nullopt;
}

void IdentityRange::release(uid_t uid) {
    used_.erase(uid);
}

std::string IdentityRange::describe() const {
    return std::to_string(first_ + 1) + "-" + std::to_string(first_ + count_ - 1);
}

std::string IdentityRange::conflicts(const std::string& etc) const {
    const std::uint64_t lo = first_, hi = static_cast<std::uint64_t>(first_) + count_;
    auto overlaps = [&](std::uint64_t start, std::uint64_t n) {
        return start < hi && lo < start + n;
    };
    // name:x:ID:... (passwd and group): one id each.
    for (const char* file : {"passwd", "group"}) {
        std::ifstream in(etc + "/" + file);
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string name, pw, id;
            if (!std::getline(fields, name, ':') || !std::getline(fields, pw, ':') ||
                !std::getline(fields, id, ':') || id.empty() ||
                id.find_first_not_of("0123456789") != std::string::npos || id.size() > 10)
                continue;
            if (overlaps(std::stoull(id), 1))
                return std::string(file == std::string("passwd") ? "user " : "group ") + name +
                       " (id " + id + ", " + etc + "/" + file + ")";
        }
    }
    // name:start:count (subuid and subgid): ranges handed to users' containers.
    for (const char* file : {"subuid", "subgid"}) {
        std::ifstream in(etc + "/" + file);
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string name, start, n;
            if (!std::getline(fields, name, ':') || !std::getline(fields, start, ':') ||
                !std::getline(fields, n, ':'))
                continue;
            if (start.empty() || n.empty() ||
                (start + n).find_first_not_of("0123456789") != std::string::npos ||
                start.size() > 10 || n.size() > 10)
                continue;
            if (overlaps(std::stoull(start), std::stoull(n)))
                return "the subordinate ids of " + name + " (" + start + "+" + n + ", " + etc +
                       "/" + file + ")";
        }
    }
    return {};
}

std::vector<std::string> bwrapArgv(const BwrapSpec& spec, const std::vector<std::string>& command) {
    // --cap-drop ALL: inside its user namespace the sandbox's uid 0 would otherwise hold every
    // capability (enough to remount the read-only binds writable). --as-pid-1: the agent is the
    // pid namespace's init, so nothing inside can kill or stop it (the kernel drops SIGKILL and
    // SIGSTOP sent to an init from its own namespace) and it reaps every orphan itself.
    std::vector<std::string> argv = {"/usr/bin/bwrap",
                                     "--unshare-all",
                                     "--unshare-user",
                                     "--uid",
                                     "0",
                                     "--gid",
                                     "0",
                                     "--as-pid-1",
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
    for (const char* dir : {"/usr", "/etc", "/opt", "/srv"})
        if (os::isDirectory(dir)) argv.insert(argv.end(), {"--ro-bind", dir, dir});
    for (const auto& [host, inside] : spec.etcFiles)
        argv.insert(argv.end(), {"--ro-bind", host, inside});
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
    argv.insert(argv.end(), {"--proc", "/proc", "--dev", "/dev"});
    if (spec.shmBytes > 0) argv.insert(argv.end(), {"--size", std::to_string(spec.shmBytes)});
    argv.insert(argv.end(), {"--tmpfs", "/dev/shm"});
    if (spec.tmpBytes > 0) argv.insert(argv.end(), {"--size", std::to_string(spec.tmpBytes)});
    // /run/agent: the agent's own small tmpfs (its named pipes), out of the way of /tmp.
    argv.insert(argv.end(), {"--tmpfs", "/tmp", "--dir", "/run", "--size", "1048576", "--tmpfs",
                             "/run/agent", "--bind", spec.workspace, "/workspace", "--ro-bind",
                             spec.agent, "/run/sandbox-agent"});
    for (int fd : spec.seccompFds)
        argv.insert(argv.end(), {"--add-seccomp-fd", std::to_string(fd)});
    // The root tmpfs holding the mount points: read-only too.
    argv.insert(argv.end(), {"--remount-ro", "/", "--chdir", "/workspace", "--"});
    argv.insert(argv.end(), command.begin(), command.end());
    return argv;
}

void mountWorkspace(const std::string& dir, std::uint64_t bytes, HostIdentity id) {
    // One inode per 4 KiB of space (at least 16384): the inode count is capped too, since
    // inodes cost kernel memory that the size does not count.
    const std::uint64_t inodes = std::max<std::uint64_t>(bytes / 4096, 16384);
    std::string opts = "size=" + std::to_string(bytes) + ",nr_inodes=" + std::to_string(inodes) +
                       ",mode=0700,uid=" + std::to_string(id.uid) +
                       ",gid=" + std::to_string(id.gid);
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
        throw std::runtime_error("cannot mount the workspace (tmpfs of " + std::to_string(bytes) +
                                 " bytes) at " + dir + ": " + std::strerror(errno));
}

bool unmountWorkspace(const std::string& dir) {
    return ::umount2(dir.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0;
}

std::string stageAgent(const std::string& program, const std::string& dir) {
    std::string target = dir + "/sandbox-agent";
    ::unlink(target.c_str());
    struct stat st {};
    if (::stat(program.c_str(), &st) != 0)
        throw std::runtime_error("cannot stat " + program + ": " + std::strerror(errno));
    // A link is enough when the program is readable and executable by everyone.
    if ((st.st_mode & 05) == 05 && ::link(program.c_str(), target.c_str()) == 0) return target;
    std::error_code ec;
    fs::copy_file(program, target, fs::copy_options::overwrite_existing, ec);
    if (ec)
        throw std::runtime_error("cannot copy " + program + " to " + target + ": " + ec.message());
    ::chmod(target.c_str(), 0755);
    return target;
}

std::string firstUnsearchable(const std::string& dir, gid_t gid) {
    fs::path p = fs::absolute(dir).lexically_normal();
    fs::path cur;
    for (const auto& part : p) {
        cur /= part;
        struct stat st {};
        if (::stat(cur.c_str(), &st) != 0) return cur.string();
        bool ok = (st.st_mode & S_IXOTH) || (st.st_gid == gid && (st.st_mode & S_IXGRP));
        if (!ok) return cur.string();
    }
    return {};
}

}  // namespace sandbox::daemon
