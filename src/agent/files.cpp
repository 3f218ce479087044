#include "agent/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <magic.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>

#include "core/base64.hpp"
#include "core/errors.hpp"
#include "core/mime.hpp"
#include "core/text.hpp"
#include "core/utf8.hpp"

namespace sandbox::agent::files {
using core::ApiError;
using nlohmann::json;

namespace {

// How many bytes at the end of `bytes` begin a UTF-8 sequence that is not complete yet.
size_t incompleteUtf8Tail(std::string_view bytes) {
    for (size_t back = 1; back <= 3 && back <= bytes.size(); ++back) {
        unsigned char c = static_cast<unsigned char>(bytes[bytes.size() - back]);
        if ((c & 0xC0) == 0x80) continue;  // continuation byte
        if (c >= 0xC0) {
            size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            if (need > back) return back;
        }
        break;
    }
    return 0;
}

// Whether the whole of the open file is valid UTF-8 (read with pread: the offset stays at 0).
bool fileIsUtf8(int fd) {
    std::string buf;
    size_t carry = 0;
    off_t off = 0;
    for (;;) {
        buf.resize(carry + (256u << 10));
        ssize_t n = ::pread(fd, buf.data() + carry, buf.size() - carry, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;  // unreadable: announce base64, the read itself will fail
        if (n == 0) return carry == 0;
        off += n;
        std::string_view have(buf.data(), carry + static_cast<size_t>(n));
        size_t tail = incompleteUtf8Tail(have);
        if (!core::isValidUtf8(have.substr(0, have.size() - tail))) return false;
        std::memmove(buf.data(), have.data() + have.size() - tail, tail);
        carry = tail;
    }
}

std::string codeForErrno(int err) {
    switch (err) {
        case ENOENT:
            return "FILE_NOT_FOUND";
        case EACCES:
        case EPERM:
            return "PERMISSION_DENIED";
        case EISDIR:
            return "IS_DIRECTORY";
        case ENOTDIR:
            return "NOT_DIRECTORY";
        case ENOSPC:
        case EDQUOT:
            return "NO_SPACE";
        case EROFS:
            return "READ_ONLY";
        case ENAMETOOLONG:
            return "NAME_TOO_LONG";
        case EEXIST:
        case ENOTEMPTY:
            return "FILE_EXISTS";
        case EBUSY:
            return "RESOURCE_BUSY";
        case EMFILE:
        case ENFILE:
            return "TOO_MANY_FILES";
        case ELOOP:
        case EMLINK:
            return "TOO_MANY_LINKS";
        default:
            return "FILESYSTEM_ERROR";
    }
}

[[noreturn]] void fail(int err, const std::string& what, const std::string& path,
                       const std::string& op) {
    std::string code = codeForErrno(err);
    std::string msg =
        code == "FILE_NOT_FOUND" ? "File not found: " + path : what + ": " + std::strerror(err);
    throw ApiError(code, msg, {{"path", path}, {"operation", op}, {"stderr", std::strerror(err)}});
}

struct Magic {
    magic_t cookie = nullptr;
    std::mutex m;
    Magic() {
        cookie = magic_open(MAGIC_MIME_TYPE | MAGIC_SYMLINK);
        if (cookie && magic_load(cookie, nullptr) != 0) {
            magic_close(cookie);
            cookie = nullptr;
        }
    }
};

int mkdirs(const std::string& dir) {
    if (dir.empty() || dir == "/") return 0;
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    auto slash = dir.rfind('/');
    if (slash != std::string::npos && slash > 0)
        if (int e = mkdirs(dir.substr(0, slash))) return e;
    if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) return errno;
    return 0;
}

std::string modeString(mode_t m) {
    std::string s = "---------";
    const char* rwx = "rwxrwxrwx";
    for (int i = 0; i < 9; ++i)
        if (m & (1 << (8 - i))) s[i] = rwx[i];
    return s;
}

// find's %TY-%Tm-%TdT%TH:%TM:%TS: local time, seconds with a 10-digit fraction, no zone.
std::string findTime(const struct timespec& ts) {
    std::tm tm{};
    localtime_r(&ts.tv_sec, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09ld0", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long>(ts.tv_nsec));
    return buf;
}

std::string baseName(const std::string& p) {
    auto s = p.rfind('/');
    return s == std::string::npos ? p : p.substr(s + 1);
}

}  // namespace

std::string detectMimeType(const std::string& path) {
    std::string mime = core::mimeTypeForPath(path);
    if (mime != "application/octet-stream") return mime;
    static Magic magic;
    if (!magic.cookie) return mime;
    std::lock_guard lock(magic.m);
    const char* r = magic_file(magic.cookie, path.c_str());
    return r ? std::string(r) : mime;
}

core::wire::ReadResponse read(const std::string& path, const std::string& displayPath,
                              core::wire::ReadEncoding encoding) {
    // O_NONBLOCK: opening a FIFO must not block the agent's only thread (no effect on files).
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(errno, "Cannot read " + displayPath, displayPath, "file.read");
    struct stat st {};
    ::fstat(fd, &st);
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw ApiError("FILE_NOT_FOUND", "File not found: " + displayPath,
                       {{"path", displayPath}, {"operation", "file.read"}});
    }
    if (static_cast<std::uint64_t>(st.st_size) > core::wire::kMaxReadSize) {
        ::close(fd);
        throw ApiError(
            "FILE_TOO_LARGE",
            "File too large: " + displayPath + " is " + std::to_string(st.st_size) +
                " bytes; the limit is 33554432 bytes (use readFileStream for larger files)",
            {{"path", displayPath},
             {"operation", "file.read"},
             {"actualSize", st.st_size},
             {"maxSize", core::wire::kMaxReadSize}});
    }
    std::string bytes;
    bytes.resize(static_cast<size_t>(st.st_size));
    size_t got = 0;
    for (;;) {
        if (got == bytes.size()) bytes.resize(bytes.size() + 65536);  // file grew while reading
        ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            fail(e, "Cannot read " + displayPath, displayPath, "file.read");
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
        if (got > core::wire::kMaxReadSize) break;
    }
    ::close(fd);
    bytes.resize(std::min<size_t>(got, core::wire::kMaxReadSize));

    core::wire::ReadResponse r;
    r.path = displayPath;
    r.mimeType = detectMimeType(path);
    // Auto: a text type whose bytes are not UTF-8 (a Windows-1252 CSV) comes back exactly, as
    // base64, rather than with its bytes replaced (the reference's lossy choice).
    bool text = core::isTextMimeType(r.mimeType) &&
                (encoding != core::wire::ReadEncoding::Auto || core::isValidUtf8(bytes));
    bool base64 = encoding == core::wire::ReadEncoding::Base64 ||
                  (encoding == core::wire::ReadEncoding::Auto && !text);
    r.encoding = base64 ? "base64" : "utf-8";
    r.isBinary = base64;
    r.size = bytes.size();
    r.content = base64 ? core::base64Encode(bytes) : core::sanitizeUtf8(bytes);
    return r;
}

ReadStream::ReadStream(const std::string& path, const std::string& displayPath) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);  // see read()
    if (fd_ < 0) fail(errno, "Cannot read " + displayPath, displayPath, "file.read");
    struct stat st {};
    ::fstat(fd_, &st);
    if (S_ISDIR(st.st_mode)) {
        ::close(fd_);  // the destructor does not run for a constructor that throws
        throw ApiError("FILE_NOT_FOUND", "File not found: " + displayPath, {{"path", displayPath}});
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    mime_ = detectMimeType(path);
    // The encoding is announced before the first chunk, so a text file is checked whole first:
    // one that is not UTF-8 streams as base64 (exact bytes) instead of with bytes replaced.
    binary_ = !core::isTextMimeType(mime_) || !fileIsUtf8(fd_);
}

ReadStream::~ReadStream() {
    if (fd_ >= 0) ::close(fd_);
}

bool ReadStream::next(std::string& encoded) {
    encoded.clear();
    if (eof_) return false;
    std::string raw(core::wire::kReadStreamChunk, '\0');
    size_t got = 0;
    while (got < raw.size()) {
        ssize_t n = ::read(fd_, raw.data() + got, raw.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            eof_ = true;
            break;
        }
        got += static_cast<size_t>(n);
    }
    raw.resize(got);
    bytesRead_ += got;
    if (binary_) {
        if (got == 0) return false;
        encoded = core::base64Encode(raw);
        return true;
    }
    // Hold back an incomplete UTF-8 sequence at the end of the chunk for the next one.
    pendingUtf8_ += raw;
    if (eof_) {
        encoded = core::sanitizeUtf8(pendingUtf8_);
        pendingUtf8_.clear();
        return !encoded.empty();
    }
    size_t cut = pendingUtf8_.size() - incompleteUtf8Tail(pendingUtf8_);
    encoded = core::sanitizeUtf8(std::string_view(pendingUtf8_).substr(0, cut));
    pendingUtf8_.erase(0, cut);
    return true;
}

void write(const std::string& path, const std::string& displayPath, std::string_view bytes) {
    auto slash = path.rfind('/');
    if (slash != std::string::npos && slash > 0)
        if (int e = mkdirs(path.substr(0, slash)))
            fail(e, "Cannot create parent directory of " + displayPath, displayPath, "file.write");
    // O_NONBLOCK: a FIFO without a reader fails (ENXIO) instead of blocking the agent.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0666);
    if (fd < 0) fail(errno, "Cannot write " + displayPath, displayPath, "file.write");
    size_t off = 0;
    while (off < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            fail(e, "Cannot write " + displayPath, displayPath, "file.write");
        }
        off += static_cast<size_t>(n);
    }
    if (::close(fd) != 0) fail(errno, "Cannot write " + displayPath, displayPath, "file.write");
}

void remove(const std::string& path, const std::string& displayPath) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT)
            throw ApiError("FILE_NOT_FOUND", "File not found: " + displayPath,
                           {{"path", displayPath}, {"operation", "file.delete"}});
        fail(errno, "Cannot delete " + displayPath, displayPath, "file.delete");
    }
    if (S_ISDIR(st.st_mode))
        throw ApiError("IS_DIRECTORY",
                       "Cannot delete directory with deleteFile() at '" + displayPath +
                           "'. Use exec('rm -rf <path>') instead.",
                       {{"path", displayPath}, {"operation", "file.delete"}});
    if (::unlink(path.c_str()) != 0)
        fail(errno, "Cannot delete " + displayPath, displayPath, "file.delete");
}

namespace {

// Copies the bytes of one open file to another; 0 or an errno.
int copyBytes(int in, int out) {
    for (;;) {
        ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
        if (n == 0) return 0;
        if (n > 0) continue;
        if (errno == EINTR) continue;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP &&
            errno != EPERM)
            return errno;
        break;  // not supported between these filesystems: copy through a buffer
    }
    std::string buf(1 << 20, '\0');
    for (;;) {
        ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return 0;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(out, buf.data() + off, static_cast<size_t>(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) return errno;
            off += w;
        }
    }
}

// Copies `from` (a file, symlink, FIFO or directory tree; not followed) to `to`, which must not
// exist, keeping modes and times as mv does across filesystems. 0 or an errno; what was copied
// before a failure is left for the caller to remove.
int copyTree(const std::string& from, const std::string& to) {
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0) return errno;
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlink(from.c_str(), target.data(), target.size());
        if (n < 0) return errno;
        target.resize(static_cast<size_t>(n));
        if (::symlink(target.c_str(), to.c_str()) != 0) return errno;
        ::utimensat(AT_FDCWD, to.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return 0;
    }
    if (S_ISFIFO(st.st_mode)) {
        if (::mkfifo(to.c_str(), st.st_mode & 07777) != 0) return errno;
    } else if (S_ISREG(st.st_mode)) {
        int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0) return errno;
        int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
        if (out < 0) {
            int e = errno;
            ::close(in);
            return e;
        }
        int e = copyBytes(in, out);
        ::close(in);
        if (::close(out) != 0 && e == 0) e = errno;
        if (e) return e;
    } else if (S_ISDIR(st.st_mode)) {
        if (::mkdir(to.c_str(), 0700) != 0) return errno;
        DIR* d = ::opendir(from.c_str());
        if (!d) return errno;
        int e = 0;
        while (dirent* ent = ::readdir(d)) {
            std::string_view name = ent->d_name;
            if (name == "." || name == "..") continue;
            if ((e = copyTree(from + "/" + ent->d_name, to + "/" + ent->d_name))) break;
        }
        ::closedir(d);
        if (e) return e;
    } else {
        return EXDEV;  // sockets and devices cannot be recreated elsewhere
    }
    ::chmod(to.c_str(), st.st_mode & 07777);
    ::utimensat(AT_FDCWD, to.c_str(), times, 0);
    return 0;
}

void removeTree(const std::string& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

// rename(2) when source and destination share a filesystem; otherwise what mv does: copy to a
// hidden name beside the destination, rename that into place (so the destination never holds
// half a copy), then remove the source. A failure before the last step leaves the source as it
// was. 0 or an errno.
int moveAcross(const std::string& from, const std::string& dest) {
    if (::rename(from.c_str(), dest.c_str()) == 0) return 0;
    if (errno != EXDEV) return errno;
    static std::atomic<unsigned> counter{0};
    auto slash = dest.rfind('/');
    std::string dir = slash == std::string::npos ? "." : dest.substr(0, slash);
    std::string tmp = dir + "/.sandbox-move-" + std::to_string(::getpid()) + "-" +
                      std::to_string(counter.fetch_add(1)) + "-" + baseName(dest);
    if (int e = copyTree(from, tmp)) {
        removeTree(tmp);
        return e;
    }
    if (::rename(tmp.c_str(), dest.c_str()) != 0) {
        int e = errno;
        removeTree(tmp);
        return e;
    }
    std::error_code ec;
    std::filesystem::remove_all(from, ec);
    return ec.value();
}

}  // namespace

void move(const std::string& from, const std::string& to, const std::string& displayFrom,
          const std::string& operation) {
    struct stat st {};
    if (::lstat(from.c_str(), &st) != 0)
        throw ApiError("FILE_NOT_FOUND", "Source file not found: " + displayFrom,
                       {{"path", displayFrom}, {"operation", operation}});
    std::string dest = to;
    struct stat dt {};
    if (::stat(to.c_str(), &dt) == 0 && S_ISDIR(dt.st_mode)) dest = to + "/" + baseName(from);
    if (int e = moveAcross(from, dest)) {
        // The source exists (checked above): a failure is about the destination, reported as
        // the reference does (FILESYSTEM_ERROR naming both paths), not as a missing source.
        std::string kind = operation == "file.move" ? "Move" : "Rename";
        throw ApiError("FILESYSTEM_ERROR",
                       kind + " operation failed: " + std::strerror(e) + " (" + to + ")",
                       {{"path", displayFrom},
                        {"operation", operation},
                        {"newPath", to},
                        {"exitCode", 1},
                        {"stderr", std::strerror(e)}});
    }
}

void mkdir(const std::string& path, const std::string& displayPath, bool recursive) {
    int e = 0;
    if (recursive)
        e = mkdirs(path);
    else if (::mkdir(path.c_str(), 0777) != 0)
        e = errno;
    if (e) {
        std::string err = std::string("mkdir: cannot create directory '") + displayPath +
                          "': " + std::strerror(e);
        std::string code = codeForErrno(e);
        throw ApiError(code,
                       code == "FILE_EXISTS" ? "Directory already exists: " + displayPath : err,
                       {{"path", displayPath},
                        {"operation", "file.mkdir"},
                        {"options", {{"recursive", recursive}}},
                        {"stderr", err}});
    }
}

std::vector<core::wire::FileInfo> list(const std::string& path, const std::string& displayPath,
                                       bool recursive, bool includeHidden) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw ApiError("FILE_NOT_FOUND", "Directory not found: " + displayPath,
                       {{"path", displayPath}, {"operation", "file.list"}});
    if (!S_ISDIR(st.st_mode))
        throw ApiError("NOT_DIRECTORY", "Path is not a directory: " + displayPath,
                       {{"path", displayPath}, {"operation", "file.list"}});
    std::vector<core::wire::FileInfo> out;
    std::string root =
        path.size() > 1 && path.back() == '/' ? path.substr(0, path.size() - 1) : path;
    std::function<void(const std::string&, const std::string&)> walk = [&](const std::string& dir,
                                                                           const std::string& rel) {
        DIR* d = ::opendir(dir.c_str());
        if (!d) return;
        std::vector<std::string> names;
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n == "." || n == "..") continue;
            names.push_back(std::move(n));
        }
        ::closedir(d);
        std::sort(names.begin(), names.end());
        for (const auto& n : names) {
            std::string full = dir == "/" ? "/" + n : dir + "/" + n;
            struct stat s {};
            if (::lstat(full.c_str(), &s) != 0) continue;
            std::string relPath = rel.empty() ? n : rel + "/" + n;
            // Hidden filtering is by basename only (as find -not -name ".*"): a hidden
            // directory is not listed, but in recursive mode its visible entries are.
            if (!includeHidden && n[0] == '.') {
                if (recursive && S_ISDIR(s.st_mode)) walk(full, relPath);
                continue;
            }
            core::wire::FileInfo fi;
            fi.name = n;
            fi.absolutePath = full;
            fi.relativePath = relPath;
            fi.type = S_ISREG(s.st_mode)   ? "file"
                      : S_ISDIR(s.st_mode) ? "directory"
                      : S_ISLNK(s.st_mode) ? "symlink"
                                           : "other";
            fi.size = static_cast<std::uint64_t>(s.st_size);
            fi.modifiedAt = findTime(s.st_mtim);
            fi.mode = modeString(s.st_mode);
            fi.readable = s.st_mode & S_IRUSR;
            fi.writable = s.st_mode & S_IWUSR;
            fi.executable = s.st_mode & S_IXUSR;
            out.push_back(std::move(fi));
            if (recursive && S_ISDIR(s.st_mode)) walk(full, out.back().relativePath);
        }
    };
    walk(root == "" ? "/" : root, "");
    return out;
}

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

}  // namespace sandbox::agent::files
