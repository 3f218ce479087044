#include "daemon/mounts.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "os/process.hpp"

namespace sandbox::daemon {

namespace {

constexpr const char* kS3fs = "/usr/bin/s3fs";

bool executable(const char* path) {
    return ::access(path, X_OK) == 0;
}

// The inode of a mount namespace (by its /proc link); 0 when unreadable.
ino_t namespaceOf(const std::string& procPath) {
    struct stat st {};
    return ::stat(procPath.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::vector<std::string> components(const std::string& path) {
    std::vector<std::string> out;
    std::stringstream ss(path);
    std::string part;
    while (std::getline(ss, part, '/'))
        if (!part.empty()) out.push_back(part);
    return out;
}

// Runs `body` in a forked child that entered the mount namespace of `nsPid`. The child makes
// system calls only. It reports failure as (step, errno) on a pipe; returns "" or the reason.
template <typename Body>
std::string inNamespace(pid_t nsPid, FileOwner owner, const char* const* steps, Body body) {
    const std::string nsPath = "/proc/" + std::to_string(nsPid) + "/ns/mnt";
    os::Fd ns(::open(nsPath.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) return "the sandbox is not running";
    struct stat theirs {
    }, ours{};
    if (::fstat(ns.get(), &theirs) != 0 || ::stat("/proc/self/ns/mnt", &ours) != 0 ||
        theirs.st_ino == ours.st_ino)
        return "the sandbox has no mount namespace of its own";
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    os::Fd rd(fds[0]), wr(fds[1]);
    pid_t child = ::fork();
    if (child < 0) return std::string("fork: ") + std::strerror(errno);
    if (child == 0) {
        auto fail = [&](int step) {
            int report[2] = {step, errno};
            (void)!::write(wr.get(), report, sizeof report);
            ::_exit(1);
        };
        if (::setns(ns.get(), CLONE_NEWNS) != 0) fail(0);
        // Files are made as the sandbox's identity (its file systems refuse unmapped ids).
        if (owner.gid != static_cast<gid_t>(-1)) ::setfsgid(owner.gid);
        if (owner.uid != static_cast<uid_t>(-1)) ::setfsuid(owner.uid);
        body(fail);
        ::_exit(0);
    }
    wr.reset();
    int report[2] = {-1, 0};
    ssize_t n;
    do {
        n = ::read(rd.get(), report, sizeof report);
    } while (n < 0 && errno == EINTR);
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (n == static_cast<ssize_t>(sizeof report))
        return std::string(steps[report[0]]) + ": " + std::strerror(report[1]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "the helper process failed";
    return {};
}

// Flags that remount "/" writable keeping its other flags (nosuid, nodev, noexec); add
// MS_RDONLY to make it read-only again. System calls only (used in forked children).
unsigned long rootRemountFlags() {
    struct statvfs vfs {};
    ::statvfs("/", &vfs);
    unsigned long flags = MS_REMOUNT | MS_BIND;
    if (vfs.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (vfs.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (vfs.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    return flags;
}

// Options from a request that only change how s3fs talks to the bucket or presents it.
bool allowedS3fsOption(const std::string& name) {
    static const char* const names[] = {"nomultipart",
                                        "nomixupload",
                                        "sigv2",
                                        "sigv4",
                                        "use_path_request_style",
                                        "endpoint",
                                        "enable_content_md5",
                                        "nocopyapi",
                                        "norenameapi",
                                        "stat_cache_expire",
                                        "stat_cache_interval_expire",
                                        "max_stat_cache_size",
                                        "multipart_size",
                                        "multipart_copy_size",
                                        "parallel_count",
                                        "readwrite_timeout",
                                        "connect_timeout",
                                        "retries",
                                        "list_object_max_keys",
                                        "max_dirty_data",
                                        "notsup_compat_dir",
                                        "compat_dir",
                                        "enable_noobj_cache",
                                        "no_check_certificate",
                                        "ssl_verify_hostname",
                                        "uid",
                                        "gid",
                                        "umask",
                                        "mp_umask",
                                        "listobjectsv2",
                                        "requester_pays",
                                        "storage_class",
                                        "complement_stat"};
    for (const char* n : names)
        if (name == n) return true;
    return false;
}

}  // namespace

std::string bucketMountsUnavailable(bool bwrapIsolation) {
    std::vector<std::string> missing;
    if (!executable(kS3fs))
        missing.push_back("s3fs is not installed on this host (" + std::string(kS3fs) +
                          "; Debian package s3fs)");
    if (::access("/dev/fuse", R_OK | W_OK) != 0)
        missing.push_back("/dev/fuse is not available to sandboxd");
    if (!bwrapIsolation)
        missing.push_back(
            "sandboxd runs with --isolation none, so a sandbox has no mount namespace of its own "
            "to mount the bucket in");
    std::string out;
    for (const auto& m : missing) out += (out.empty() ? "" : "; ") + m;
    return out;
}

std::string s3fsOptionRefused(const std::string& option) {
    if (option.find(',') != std::string::npos)
        return "s3fs option '" + option + "' must be one option (no ',')";
    const std::string name = option.substr(0, option.find('='));
    if (name.empty() || !allowedS3fsOption(name))
        return "s3fs option '" + option +
               "' is not accepted by sandboxd (s3fs runs on the host; options naming files or "
               "changing where it writes are refused)";
    return {};
}

pid_t startS3fs(const BucketSpec& spec, const std::string& hostDir, const std::string& logPath) {
    std::string source = spec.bucket;
    if (!spec.prefix.empty() && spec.prefix != "/") {
        std::string prefix = spec.prefix;
        if (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
        source += ":" + prefix;
    }
    // The provider's flags as the SDK picks them from the endpoint's host: R2 takes no mixed
    // multipart uploads; AWS and Google use virtual-host addressing; any other server gets
    // path-style requests. retries=2: an unreachable endpoint fails the mount in about 4 s,
    // not s3fs's 20. A request's own options come later and win.
    std::string host = spec.endpoint.substr(
        spec.endpoint.find("://") == std::string::npos ? 0 : spec.endpoint.find("://") + 3);
    host = host.substr(0, host.find_first_of("/:?#"));
    auto endsWith = [&](std::string_view tail) {
        return host.size() >= tail.size() &&
               host.compare(host.size() - tail.size(), tail.size(), tail) == 0;
    };
    std::string opts = "url=" + spec.endpoint + ",allow_other,retries=2";
    if (endsWith(".r2.cloudflarestorage.com"))
        opts += ",nomixupload";
    else if (!endsWith(".amazonaws.com") && host != "storage.googleapis.com")
        opts += ",use_path_request_style";
    if (spec.readOnly) opts += ",ro";
    for (const auto& o : spec.s3fsOptions) opts += "," + o;

    os::Fd log(::open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    os::Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    os::SpawnOptions so;
    so.argv = {kS3fs, source, hostDir, "-f", "-o", opts};
    so.env = os::environWith({{"AWSACCESSKEYID", spec.accessKeyId},
                              {"AWSSECRETACCESSKEY", spec.secretAccessKey},
                              {"AWS_ACCESS_KEY_ID", spec.accessKeyId},
                              {"AWS_SECRET_ACCESS_KEY", spec.secretAccessKey},
                              {"SANDBOX_API_KEY", std::nullopt}});
    so.cwd = "/";
    int out = log ? log.get() : devnull.get();
    so.fds = {{0, devnull.get()}, {1, out}, {2, out}};
    return os::spawnProcess(so);
}

bool isMountPoint(const std::string& dir) {
    std::ifstream info("/proc/self/mountinfo");
    std::string line;
    while (std::getline(info, line)) {
        // "id parent major:minor root mountpoint ..." (octal escapes for spaces and the like;
        // our directories have none).
        std::istringstream fields(line);
        std::string id, parent, dev, root, point;
        if (fields >> id >> parent >> dev >> root >> point && point == dir) return true;
    }
    return false;
}

pid_t sandboxNamespacePid(pid_t launcher) {
    if (launcher <= 0) return -1;
    const ino_t ours = namespaceOf("/proc/self/ns/mnt");
    for (pid_t p : os::descendantsOf(launcher)) {
        ino_t theirs = namespaceOf("/proc/" + std::to_string(p) + "/ns/mnt");
        if (theirs != 0 && theirs != ours) return p;
    }
    return -1;
}

void attachInto(pid_t nsPid, const std::string& hostDir, const std::string& path, FileOwner owner) {
    int tree = static_cast<int>(
        ::syscall(SYS_open_tree, AT_FDCWD, hostDir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (tree < 0)
        throw std::runtime_error(std::string("cannot clone the bucket's mount: ") +
                                 std::strerror(errno));
    os::Fd treeFd(tree);
    const std::vector<std::string> parts = components(path);
    static const char* const steps[] = {
        "entering the sandbox's mount namespace",     "opening the sandbox's root",
        "making the sandbox's root writable",         "creating the mount point",
        "opening the mount point (a symbolic link?)", "attaching the mount"};
    std::string error = inNamespace(nsPid, owner, steps, [&](auto fail) {
        int dir = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0) fail(1);
        struct stat root {};
        ::fstat(dir, &root);
        bool remounted = false;
        unsigned long rootFlags = 0;
        for (const auto& part : parts) {
            if (::mkdirat(dir, part.c_str(), 0755) != 0 && errno != EEXIST) {
                struct stat here {};
                ::fstat(dir, &here);
                // Only the sandbox's own root (a tmpfs) may be made writable for this; any
                // other read-only mount is one of the host's directories.
                if (errno != EROFS || remounted || here.st_dev != root.st_dev) fail(3);
                rootFlags = rootRemountFlags();
                if (::mount(nullptr, "/", nullptr, rootFlags, nullptr) != 0) fail(2);
                remounted = true;
                if (::mkdirat(dir, part.c_str(), 0755) != 0 && errno != EEXIST) fail(3);
            }
            int next = ::openat(dir, part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (next < 0) fail(4);
            ::close(dir);
            dir = next;
        }
        if (remounted) ::mount(nullptr, "/", nullptr, rootFlags | MS_RDONLY, nullptr);
        if (::syscall(SYS_move_mount, treeFd.get(), "", dir, "",
                      MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) != 0)
            fail(5);
    });
    if (!error.empty()) throw std::runtime_error(error);
}

void detachFrom(pid_t nsPid, const std::string& path, FileOwner owner) {
    static const char* const steps[] = {"entering the sandbox's mount namespace", "unmounting"};
    std::string error = inNamespace(nsPid, owner, steps, [&](auto fail) {
        if (::umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) fail(1);
        // As the reference: the mount point goes when empty. On the sandbox's read-only root
        // (where attachInto made it) that takes the root writable for the moment.
        if (::rmdir(path.c_str()) != 0 && errno == EROFS) {
            struct stat root {
            }, parent{};
            std::string dir = path.substr(0, path.rfind('/'));
            if (dir.empty()) dir = "/";
            if (::stat("/", &root) == 0 && ::stat(dir.c_str(), &parent) == 0 &&
                root.st_dev == parent.st_dev) {
                const unsigned long flags = rootRemountFlags();
                if (::mount(nullptr, "/", nullptr, flags, nullptr) == 0) {
                    ::rmdir(path.c_str());
                    ::mount(nullptr, "/", nullptr, flags | MS_RDONLY, nullptr);
                }
            }
        }
    });
    if (!error.empty()) throw std::runtime_error(error);
}

void releaseHostSide(BucketMount& m) {
    if (!m.hostDir.empty()) ::umount2(m.hostDir.c_str(), MNT_DETACH);
    if (m.s3fs > 0) {
        // s3fs ends once its file system is unmounted; TERM in case it has not.
        ::kill(m.s3fs, SIGTERM);
        int status = 0;
        bool reaped = false;
        for (int i = 0; i < 200 && !reaped; ++i) {
            pid_t r = ::waitpid(m.s3fs, &status, WNOHANG);
            reaped = r == m.s3fs || (r < 0 && errno == ECHILD);
            if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        if (!reaped) {
            ::kill(m.s3fs, SIGKILL);
            ::waitpid(m.s3fs, &status, 0);
        }
        os::forgetChild(m.s3fs);
        m.s3fs = -1;
    }
    if (!m.hostDir.empty()) {
        ::rmdir(m.hostDir.c_str());
        ::unlink((m.hostDir + ".log").c_str());
    }
}

void cleanStaleMounts(const std::string& mountsDir) {
    DIR* d = ::opendir(mountsDir.c_str());
    if (!d) return;
    std::vector<std::string> entries;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") entries.push_back(mountsDir + "/" + name);
    }
    ::closedir(d);
    for (const auto& path : entries) {
        ::umount2(path.c_str(), MNT_DETACH);
        if (::rmdir(path.c_str()) != 0 && path.ends_with(".log")) ::unlink(path.c_str());
    }
}

}  // namespace sandbox::daemon
