// The /hydrate tar reader (src/daemon/archive.cpp, extractToWorkspace) with small limits, each
// input extracted into a fresh workspace directory that is removed afterwards. The workspace
// starts with symbolic links that lead out of it (to a sibling sentinel directory, relative and
// absolute, to a directory and to a file), as a hostile sandbox could leave them. Whatever the
// archive, nothing outside the workspace may change: the sentinel directory keeps exactly its
// one file, with its content, mode and link count, and nothing else appears next to the
// workspace.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/archive.hpp"
#include "fuzz_common.hpp"

namespace {

constexpr std::string_view kSentinelText = "outside the workspace";

struct Scratch {
    std::string base, sentinel, sentinelFile;
    struct stat sentinelStat {
    }, sentinelDirStat{};
    Scratch() {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/fuzz_tar.XXXXXX";
        if (!::mkdtemp(templ.data())) sandbox::fuzz::fail("mkdtemp", templ);
        base = templ;
        sentinel = base + "/sentinel";
        sentinelFile = sentinel + "/keep";
        if (::mkdir(sentinel.c_str(), 0755) != 0) sandbox::fuzz::fail("mkdir", sentinel);
        int fd = ::open(sentinelFile.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || ::write(fd, kSentinelText.data(), kSentinelText.size()) !=
                          static_cast<ssize_t>(kSentinelText.size()))
            sandbox::fuzz::fail("write", sentinelFile);
        ::close(fd);
        ::lstat(sentinelFile.c_str(), &sentinelStat);
        ::lstat(sentinel.c_str(), &sentinelDirStat);
    }
    ~Scratch() { removeTree(base); }

    // Removes `path` and what is below it without following links; directories an archive made
    // unreadable (mode 000) are opened up first.
    static void removeTree(const std::string& path) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) return;
        if (S_ISDIR(st.st_mode)) {
            ::chmod(path.c_str(), 0700);
            if (DIR* d = ::opendir(path.c_str())) {
                std::vector<std::string> names;
                while (auto* e = ::readdir(d))
                    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                        names.emplace_back(e->d_name);
                ::closedir(d);
                for (const auto& n : names) removeTree(path + "/" + n);
            }
            ::rmdir(path.c_str());
        } else {
            ::unlink(path.c_str());
        }
    }

    static std::vector<std::string> list(const std::string& dir) {
        std::vector<std::string> names;
        if (DIR* d = ::opendir(dir.c_str())) {
            while (auto* e = ::readdir(d))
                if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
                    names.emplace_back(e->d_name);
            ::closedir(d);
        }
        return names;
    }

    void checkOutside() const {
        auto inSentinel = list(sentinel);
        FUZZ_CHECK(inSentinel.size() == 1 && inSentinel[0] == "keep",
                   inSentinel.empty() ? std::string("(empty)") : inSentinel[0]);
        struct stat st {};
        FUZZ_CHECK(::lstat(sentinelFile.c_str(), &st) == 0, sentinelFile);
        FUZZ_CHECK(S_ISREG(st.st_mode), sentinelFile);
        FUZZ_CHECK(st.st_ino == sentinelStat.st_ino, sentinelFile);
        FUZZ_CHECK(st.st_mode == sentinelStat.st_mode, sentinelFile);
        FUZZ_CHECK(st.st_nlink == 1, sentinelFile);  // no hard link to it was made
        FUZZ_CHECK(st.st_size == static_cast<off_t>(kSentinelText.size()), sentinelFile);
        char buf[64] = {};
        int fd = ::open(sentinelFile.c_str(), O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? ::read(fd, buf, sizeof buf) : -1;
        if (fd >= 0) ::close(fd);
        FUZZ_CHECK(std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0) == kSentinelText,
                   std::string_view(buf, n > 0 ? static_cast<size_t>(n) : 0));
        struct stat sd {};
        FUZZ_CHECK(::lstat(sentinel.c_str(), &sd) == 0 && S_ISDIR(sd.st_mode), sentinel);
        FUZZ_CHECK(sd.st_mode == sentinelDirStat.st_mode && sd.st_ino == sentinelDirStat.st_ino,
                   sentinel);
        auto inBase = list(base);
        for (const auto& n2 : inBase) FUZZ_CHECK(n2 == "sentinel" || n2 == "ws", n2);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    static Scratch scratch;
    const std::string ws = scratch.base + "/ws";
    Scratch::removeTree(ws);
    if (::mkdir(ws.c_str(), 0755) != 0) sandbox::fuzz::fail("mkdir", ws);
    // Links a sandbox could have left in its workspace, all leading out of it.
    ::symlink("../sentinel", (ws + "/out").c_str());
    ::symlink(scratch.sentinel.c_str(), (ws + "/out_abs").c_str());
    ::symlink("../sentinel/keep", (ws + "/out_file").c_str());
    ::mkdir((ws + "/dir").c_str(), 0755);
    ::symlink("../../sentinel", (ws + "/dir/up").c_str());

    sandbox::daemon::HydrateLimits limits;
    limits.maxEntryBytes = 64 * 1024;
    limits.maxTotalBytes = 256 * 1024;
    limits.maxEntries = 64;
    const std::string error = sandbox::daemon::extractToWorkspace(
        ws, std::string_view(reinterpret_cast<const char*>(bytes), size), limits);
    (void)error;  // refused archives are fine; what matters is what happened on disk

    scratch.checkOutside();
    Scratch::removeTree(ws);
    return 0;
}
