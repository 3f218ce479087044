#include "daemon/archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sandbox::daemon {
namespace {

// openat2 beneath `dirFd`, never through a symbolic link (nor a magic /proc link).
int openBeneath(int dirFd, const std::string& rel, int flags) {
    open_how how{};
    how.flags = static_cast<unsigned long long>(flags | O_CLOEXEC);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = ::syscall(SYS_openat2, dirFd, rel.empty() ? "." : rel.c_str(), &how, sizeof how);
    return fd < 0 ? -errno : static_cast<int>(fd);
}

struct FdGuard {
    int fd = -1;
    FdGuard() = default;
    explicit FdGuard(int f) : fd(f) {}
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    ~FdGuard() { reset(); }
    void reset(int f = -1) {
        if (fd >= 0) ::close(fd);
        fd = f;
    }
};

std::string errnoText(int err) {
    return std::strerror(err);
}

}  // namespace

// ---- persist -------------------------------------------------------------------------------

struct WorkspaceTar::Impl {
    struct Member {
        std::string rel;  // "" for the workspace itself, else "a/b"
        struct stat st {};
        std::string linkTarget;
    };
    FdGuard root;
    std::vector<std::string> patterns;  // "./item"
    std::vector<Member> members;
    std::size_t index = 0;
    archive* ar = nullptr;
    archive_entry* entry = nullptr;
    std::string* out = nullptr;
    FdGuard file;            // the regular file being copied
    std::uint64_t left = 0;  // its bytes still to copy
    bool closed = false;
    std::string buf;

    static la_ssize_t writeCb(archive*, void* self, const void* data, size_t n) {
        auto* impl = static_cast<Impl*>(self);
        impl->out->append(static_cast<const char*>(data), n);
        return static_cast<la_ssize_t>(n);
    }

    bool excluded(const std::string& name) const {
        for (const auto& p : patterns) {
            if (::fnmatch(p.c_str(), name.c_str(), FNM_LEADING_DIR) == 0) return true;
            // Not anchored: the pattern may also match after any '/' of the name.
            for (size_t i = name.find('/'); i != std::string::npos; i = name.find('/', i + 1))
                if (::fnmatch(p.c_str(), name.c_str() + i + 1, FNM_LEADING_DIR) == 0) return true;
        }
        return false;
    }

    void scan(int dirFd, const std::string& rel) {
        int dup = ::fcntl(dirFd, F_DUPFD_CLOEXEC, 0);
        if (dup < 0) return;
        DIR* d = ::fdopendir(dup);
        if (!d) {
            ::close(dup);
            return;
        }
        std::vector<std::string> names;
        while (auto* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") names.push_back(std::move(n));
        }
        std::sort(names.begin(), names.end());
        for (const auto& n : names) {
            Member m;
            m.rel = rel.empty() ? n : rel + "/" + n;
            if (::fstatat(dirFd, n.c_str(), &m.st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (excluded("./" + m.rel)) continue;
            mode_t t = m.st.st_mode & S_IFMT;
            if (t == S_IFLNK) {
                char target[4096];
                ssize_t len = ::readlinkat(dirFd, n.c_str(), target, sizeof target);
                if (len < 0 || static_cast<size_t>(len) >= sizeof target) continue;
                m.linkTarget.assign(target, static_cast<size_t>(len));
            } else if (t != S_IFREG && t != S_IFDIR && t != S_IFIFO) {
                continue;  // sockets and device nodes: as tar, left out
            }
            members.push_back(m);
            if (t == S_IFDIR) {
                FdGuard sub(openBeneath(dirFd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
                if (sub.fd >= 0) scan(sub.fd, m.rel);
            }
        }
        ::closedir(d);
    }

    // Writes the header of members[index] (and opens its data); false when it is skipped.
    bool beginMember() {
        const Member& m = members[index];
        archive_entry_clear(entry);
        struct stat st = m.st;
        mode_t t = st.st_mode & S_IFMT;
        if (t == S_IFREG) {
            file.reset(openBeneath(root.fd, m.rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
            if (file.fd < 0 || ::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                file.reset();
                return false;
            }
            left = static_cast<std::uint64_t>(st.st_size);
        }
        std::string name = m.rel.empty() ? "./" : "./" + m.rel + (t == S_IFDIR ? "/" : "");
        archive_entry_set_pathname(entry, name.c_str());
        archive_entry_set_mode(entry, st.st_mode);
        archive_entry_set_uid(entry, st.st_uid);
        archive_entry_set_gid(entry, st.st_gid);
        archive_entry_set_mtime(entry, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
        archive_entry_set_size(entry, t == S_IFREG ? st.st_size : 0);
        if (t == S_IFLNK) archive_entry_set_symlink(entry, m.linkTarget.c_str());
        if (archive_write_header(ar, entry) < ARCHIVE_WARN)
            throw std::runtime_error(archive_error_string(ar));
        return true;
    }
};

WorkspaceTar::WorkspaceTar(const std::string& workspaceDir,
                           const std::vector<std::string>& excludes)
    : impl_(std::make_unique<Impl>()) {
    impl_->root.reset(
        ::open(workspaceDir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (impl_->root.fd < 0)
        throw std::runtime_error("cannot open the workspace: " + errnoText(errno));
    for (std::string item : excludes) {
        if (item.rfind("./", 0) == 0) item.erase(0, 2);
        while (item.size() > 1 && item.back() == '/') item.pop_back();
        impl_->patterns.push_back("./" + item);
    }
    Impl::Member rootMember;
    if (::fstat(impl_->root.fd, &rootMember.st) != 0)
        throw std::runtime_error("cannot read the workspace: " + errnoText(errno));
    impl_->members.push_back(rootMember);
    impl_->scan(impl_->root.fd, "");
    impl_->ar = archive_write_new();
    impl_->entry = archive_entry_new();
    if (!impl_->ar || !impl_->entry) throw std::runtime_error("out of memory");
    archive_write_set_format_pax_restricted(impl_->ar);
    if (archive_write_open(impl_->ar, impl_.get(), nullptr, &Impl::writeCb, nullptr) != ARCHIVE_OK)
        throw std::runtime_error(archive_error_string(impl_->ar));
    impl_->buf.resize(256 * 1024);
}

WorkspaceTar::~WorkspaceTar() {
    if (impl_->entry) archive_entry_free(impl_->entry);
    if (impl_->ar) archive_write_free(impl_->ar);  // closes it if it is still open
}

std::size_t WorkspaceTar::memberCount() const {
    return impl_->members.size();
}

bool WorkspaceTar::next(std::string& out, std::size_t maxBytes) {
    Impl& m = *impl_;
    if (m.closed) return false;
    m.out = &out;
    const std::size_t start = out.size();
    while (out.size() - start < maxBytes) {
        if (m.file.fd >= 0) {
            std::size_t want =
                static_cast<std::size_t>(std::min<std::uint64_t>(m.left, m.buf.size()));
            ssize_t n = want ? ::read(m.file.fd, m.buf.data(), want) : 0;
            if (n < 0 && errno == EINTR) continue;
            if (n > 0) {
                if (archive_write_data(m.ar, m.buf.data(), static_cast<size_t>(n)) < 0)
                    throw std::runtime_error(archive_error_string(m.ar));
                m.left -= static_cast<std::uint64_t>(n);
                continue;
            }
            // Done, or the file shrank / failed: finishing the entry pads it with zeros.
            m.file.reset();
            if (archive_write_finish_entry(m.ar) != ARCHIVE_OK)
                throw std::runtime_error(archive_error_string(m.ar));
            ++m.index;
            continue;
        }
        if (m.index >= m.members.size()) {
            if (archive_write_close(m.ar) != ARCHIVE_OK)
                throw std::runtime_error(archive_error_string(m.ar));
            m.closed = true;
            m.out = nullptr;
            return false;
        }
        bool started = m.beginMember();
        if (!started) {
            ++m.index;
            continue;
        }
        if (m.file.fd < 0) {
            archive_write_finish_entry(m.ar);
            ++m.index;
        }
    }
    m.out = nullptr;
    return true;
}

// ---- hydrate -------------------------------------------------------------------------------

namespace {

struct ReadArchive {
    archive* a = archive_read_new();
    ~ReadArchive() {
        if (a) archive_read_free(a);
    }
    std::string open(std::string_view data) {
        if (!a) return "out of memory";
        archive_read_support_format_tar(a);
        archive_read_support_filter_gzip(a);
        archive_read_support_filter_bzip2(a);
        archive_read_support_filter_xz(a);
        archive_read_support_filter_zstd(a);
        if (archive_read_open_memory(a, data.data(), data.size()) != ARCHIVE_OK)
            return archive_error_string(a) ? archive_error_string(a) : "cannot read the archive";
        return {};
    }
    std::string error() const {
        const char* e = archive_error_string(a);
        return e ? e : "cannot read the archive";
    }
};

// A member name made relative to the workspace ("" is the workspace itself), or false with
// the reason it is refused.
bool memberPath(const char* raw, std::string& out, std::string& why) {
    out.clear();
    if (!raw) {
        why = "member has no name";
        return false;
    }
    std::string_view s(raw);
    if (!s.empty() && s[0] == '/') {
        why = "absolute path refused";
        return false;
    }
    size_t i = 0;
    while (i <= s.size()) {
        size_t j = s.find('/', i);
        if (j == std::string_view::npos) j = s.size();
        std::string_view seg = s.substr(i, j - i);
        if (seg == "..") {
            why = "path contains '..', refused";
            return false;
        }
        if (!seg.empty() && seg != ".") {
            if (!out.empty()) out += '/';
            out.append(seg);
        }
        i = j + 1;
    }
    return true;
}

struct Extractor {
    int ws;
    FileOwner owner;
    std::string cachedDir;  // the parent directory last opened, and its fd
    FdGuard cachedFd;

    // The directory holding `rel` (created as needed, never through a symlink); -errno.
    int parentOf(const std::string& rel, std::string& leaf) {
        auto slash = rel.rfind('/');
        std::string dir = slash == std::string::npos ? "" : rel.substr(0, slash);
        leaf = slash == std::string::npos ? rel : rel.substr(slash + 1);
        if (cachedFd.fd >= 0 && dir == cachedDir) return cachedFd.fd;
        int d = ::fcntl(ws, F_DUPFD_CLOEXEC, 0);
        if (d < 0) return -errno;
        size_t i = 0;
        while (i < dir.size()) {
            size_t j = dir.find('/', i);
            if (j == std::string::npos) j = dir.size();
            std::string comp = dir.substr(i, j - i);
            int nd = ::openat(d, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (nd < 0 && errno == ENOENT) {
                if (::mkdirat(d, comp.c_str(), 0755) == 0)
                    ::fchownat(d, comp.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
                else if (errno != EEXIST) {
                    int err = errno;
                    ::close(d);
                    return -err;
                }
                nd = ::openat(d, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
            int err = errno;
            ::close(d);
            if (nd < 0) return -err;
            d = nd;
            i = j + 1;
        }
        cachedDir = dir;
        cachedFd.reset(d);
        return d;
    }

    // Removes what is at `leaf` unless it is a directory and `keepDir`; -errno on failure.
    static int clear(int dir, const std::string& leaf, bool keepDir) {
        struct stat st {};
        if (::fstatat(dir, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            return errno == ENOENT ? 0 : -errno;
        if (S_ISDIR(st.st_mode)) {
            if (keepDir) return 1;
            return ::unlinkat(dir, leaf.c_str(), AT_REMOVEDIR) == 0 ? 0 : -errno;
        }
        return ::unlinkat(dir, leaf.c_str(), 0) == 0 ? 0 : -errno;
    }
};

}  // namespace

std::string extractToWorkspace(const std::string& workspaceDir, std::string_view data,
                               const HydrateLimits& limits, FileOwner owner) {
    FdGuard ws(::open(workspaceDir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (ws.fd < 0) return "cannot open the workspace: " + errnoText(errno);

    // Pass 1: every header, before anything is written.
    {
        ReadArchive r;
        if (auto e = r.open(data); !e.empty()) return e;
        archive_entry* e;
        std::size_t count = 0;
        std::uint64_t total = 0;
        for (;;) {
            int rc = archive_read_next_header(r.a, &e);
            if (rc == ARCHIVE_EOF) break;
            if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return r.error();
            const char* raw = archive_entry_pathname(e);
            std::string name = raw ? raw : "";
            std::string rel, why;
            if (!memberPath(raw, rel, why)) return name + ": " + why;
            if (++count > limits.maxEntries)
                return "the archive has more than " + std::to_string(limits.maxEntries) +
                       " members";
            if (const char* hl = archive_entry_hardlink(e)) {
                std::string target;
                if (!memberPath(hl, target, why) || target.empty())
                    return name + ": hard link to '" + hl +
                           "': " + (why.empty() ? "the workspace itself" : why);
            } else {
                auto type = archive_entry_filetype(e);
                if (type != AE_IFREG && type != AE_IFDIR && type != AE_IFLNK && type != AE_IFIFO)
                    return name + ": device nodes and sockets are refused";
            }
            auto size = archive_entry_size(e);
            if (size < 0 || static_cast<std::uint64_t>(size) > limits.maxEntryBytes)
                return name + ": member of " + std::to_string(size) +
                       " bytes exceeds the limit of " + std::to_string(limits.maxEntryBytes);
            if (archive_entry_sparse_count(e) == 0) total += static_cast<std::uint64_t>(size);
            if (total > limits.maxTotalBytes)
                return "the archive holds more than " + std::to_string(limits.maxTotalBytes) +
                       " bytes";
            if (archive_read_data_skip(r.a) != ARCHIVE_OK) return r.error();
        }
    }

    // Pass 2: extract.
    ReadArchive r;
    if (auto e = r.open(data); !e.empty()) return e;
    Extractor x{ws.fd, owner, {}, {}};
    struct DirMeta {
        std::string rel;
        mode_t mode;
        timespec mtime;
    };
    std::vector<DirMeta> dirs;
    std::uint64_t written = 0;
    archive_entry* e;
    for (;;) {
        int rc = archive_read_next_header(r.a, &e);
        if (rc == ARCHIVE_EOF) break;
        if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return r.error();
        const char* raw = archive_entry_pathname(e);
        std::string name = raw ? raw : "", rel, why;
        if (!memberPath(raw, rel, why)) return name + ": " + why;
        const mode_t perm = archive_entry_perm(e) & 0777;  // never set-id or sticky
        timespec mtime{archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
        auto fail = [&](const std::string& what, int err) {
            return name + ": " + what + ": " + errnoText(err);
        };
        if (rel.empty()) continue;  // "./": the workspace itself
        std::string leaf;
        int dir = x.parentOf(rel, leaf);
        if (dir < 0)
            return fail("cannot reach its directory (a symbolic link or a file on the way?)", -dir);
        const char* hardlink = archive_entry_hardlink(e);
        auto type = archive_entry_filetype(e);
        if (!hardlink && type == AE_IFDIR) {
            int c = Extractor::clear(dir, leaf, true);
            if (c < 0) return fail("cannot replace", -c);
            if (c == 0) {
                if (::mkdirat(dir, leaf.c_str(), 0755) == 0)
                    ::fchownat(dir, leaf.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
                else if (errno != EEXIST)
                    return fail("cannot create directory", errno);
            }
            dirs.push_back({rel, perm, mtime});
            continue;
        }
        int c = Extractor::clear(dir, leaf, false);
        if (c < 0) return fail("cannot replace", -c);
        if (hardlink) {
            std::string target;
            memberPath(hardlink, target, why);
            FdGuard src(openBeneath(ws.fd, target, O_PATH | O_NOFOLLOW));
            if (src.fd < 0) return fail("cannot link to '" + target + "'", -src.fd);
            std::string proc = "/proc/self/fd/" + std::to_string(src.fd);
            if (::linkat(AT_FDCWD, proc.c_str(), dir, leaf.c_str(), AT_SYMLINK_FOLLOW) != 0)
                return fail("cannot link to '" + target + "'", errno);
            continue;
        }
        if (type == AE_IFLNK) {
            const char* target = archive_entry_symlink(e);
            if (::symlinkat(target ? target : "", dir, leaf.c_str()) != 0)
                return fail("cannot create symbolic link", errno);
            ::fchownat(dir, leaf.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
            timespec times[2] = {mtime, mtime};
            ::utimensat(dir, leaf.c_str(), times, AT_SYMLINK_NOFOLLOW);
            continue;
        }
        if (type == AE_IFIFO) {
            if (::mkfifoat(dir, leaf.c_str(), perm) != 0) return fail("cannot create FIFO", errno);
            ::fchownat(dir, leaf.c_str(), owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW);
            continue;
        }
        FdGuard f(::openat(dir, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           0600));
        if (f.fd < 0) return fail("cannot create file", errno);
        ::fchown(f.fd, owner.uid, owner.gid);
        const void* block;
        size_t len;
        la_int64_t offset;
        for (;;) {
            int b = archive_read_data_block(r.a, &block, &len, &offset);
            if (b == ARCHIVE_EOF) break;
            if (b != ARCHIVE_OK && b != ARCHIVE_WARN) return name + ": " + r.error();
            written += len;
            if (written > limits.maxTotalBytes)
                return "the archive holds more than " + std::to_string(limits.maxTotalBytes) +
                       " bytes";
            size_t done = 0;
            while (done < len) {
                ssize_t n = ::pwrite(f.fd, static_cast<const char*>(block) + done, len - done,
                                     offset + static_cast<off_t>(done));
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return fail("write failed", errno);
                done += static_cast<size_t>(n);
            }
        }
        // Sparse members end in a hole: the file gets its full size.
        if (::ftruncate(f.fd, archive_entry_size(e)) != 0) return fail("write failed", errno);
        ::fchmod(f.fd, perm);
        timespec times[2] = {mtime, mtime};
        ::futimens(f.fd, times);
    }
    // Directory modes and times last (their content changed them, and a read-only directory
    // must not stop its own members).
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
        FdGuard d(openBeneath(ws.fd, it->rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (d.fd < 0) continue;
        ::fchmod(d.fd, it->mode);
        timespec times[2] = {it->mtime, it->mtime};
        ::futimens(d.fd, times);
    }
    return {};
}

}  // namespace sandbox::daemon
