#include "daemon/workspace_fs.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace sandbox::daemon {

std::string resolveWorkspacePath(std::string_view path) {
    // The result is opened as a C string: a NUL would name another file than the one checked.
    if (path.find('\0') != std::string_view::npos) return {};
    std::string full =
        !path.empty() && path[0] == '/' ? std::string(path) : "/workspace/" + std::string(path);
    std::vector<std::string_view> parts;
    std::string_view v(full);
    size_t i = 0;
    while (i <= v.size()) {
        size_t j = v.find('/', i);
        if (j == std::string_view::npos) j = v.size();
        auto seg = v.substr(i, j - i);
        if (seg.empty() || seg == ".") {
        } else if (seg == "..") {
            if (!parts.empty()) parts.pop_back();
        } else {
            parts.push_back(seg);
        }
        i = j + 1;
    }
    std::string out;
    for (auto s : parts) out.append("/").append(s);
    if (out.empty()) out = "/";
    if (out == "/workspace" || out.rfind("/workspace/", 0) == 0) return out;
    return {};
}

namespace {

int openat2InRoot(int rootFd, const std::string& rel, int flags, mode_t mode) {
    open_how how{};
    how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, rootFd, rel.empty() ? "." : rel.c_str(), &how, sizeof how);
    return fd < 0 ? -errno : static_cast<int>(fd);
}

}  // namespace

int openInWorkspace(const std::string& rootDir, const std::string& rel) {
    int root = ::open(rootDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return -errno;
    // O_NONBLOCK: opening a FIFO the sandbox made must not block the daemon.
    int fd = openat2InRoot(root, rel, O_RDONLY | O_NONBLOCK, 0);
    ::close(root);
    return fd;
}

int createInWorkspace(const std::string& rootDir, const std::string& rel, FileOwner owner) {
    int root = ::open(rootDir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) return -errno;
    // Create the parents one level at a time, each resolved inside the root.
    std::string prefix;
    size_t pos = 0;
    while ((pos = rel.find('/', pos)) != std::string::npos) {
        prefix = rel.substr(0, pos);
        ++pos;
        if (prefix.empty()) continue;
        int d = openat2InRoot(root, prefix, O_RDONLY | O_DIRECTORY, 0);
        if (d >= 0) {
            ::close(d);
            continue;
        }
        if (d != -ENOENT) {
            ::close(root);
            return d;
        }
        auto slash = prefix.rfind('/');
        std::string parent = slash == std::string::npos ? "" : prefix.substr(0, slash);
        std::string name = slash == std::string::npos ? prefix : prefix.substr(slash + 1);
        int pd = openat2InRoot(root, parent, O_RDONLY | O_DIRECTORY, 0);
        if (pd < 0) {
            ::close(root);
            return pd;
        }
        int rc = ::mkdirat(pd, name.c_str(), 0777);
        int err = errno;
        if (rc == 0) ::fchownat(pd, name.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
        ::close(pd);
        if (rc != 0 && err != EEXIST) {
            ::close(root);
            return -err;
        }
    }
    int fd = openat2InRoot(root, rel, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK, 0666);
    ::close(root);
    if (fd >= 0) ::fchown(fd, owner.uid, owner.gid);
    return fd;
}

}  // namespace sandbox::daemon
