// The embedded default: a private sandboxd, started on first use and shared by every Client of
// the process; it exits (destroying its sandboxes) when the last user releases it, or when this
// process dies (it watches its stdin, whose write end only this process holds).
#include <dlfcn.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "client/client_impl.hpp"

extern char** environ;

namespace sandbox::detail {
namespace fs = std::filesystem;

namespace {

// The directory this library was loaded from (libsandbox.so's own, not the program's).
std::string libraryDirectory() {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&libraryDirectory), &info) == 0 || !info.dli_fname)
        return {};
    std::error_code ec;
    fs::path p = fs::canonical(info.dli_fname, ec);
    return ec ? std::string() : p.parent_path().string();
}

}  // namespace

std::vector<std::string> sandboxdCandidates(const std::string& explicitPath) {
    std::vector<std::string> out;
    if (!explicitPath.empty()) out.push_back(explicitPath);
    if (const char* env = std::getenv("SANDBOXD_PATH"); env && *env) out.emplace_back(env);
    // Installed beside the library (PREFIX/lib/libsandbox.so -> PREFIX/bin/sandboxd), wherever
    // the prefix is.
    if (auto dir = libraryDirectory(); !dir.empty())
        out.push_back(
            (fs::path(dir) / SANDBOX_LIB_TO_BIN / "sandboxd").lexically_normal().string());
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0)
        out.push_back(
            (fs::path(std::string(buf, static_cast<size_t>(n))).parent_path() / "sandboxd")
                .string());
    if (const char* path = std::getenv("PATH")) {
        std::stringstream ss(path);
        std::string dir;
        while (std::getline(ss, dir, ':'))
            if (!dir.empty()) out.push_back(dir + "/sandboxd");
    }
    return out;
}

std::shared_ptr<EmbeddedDaemon> EmbeddedDaemon::shared(const std::string& explicitPath,
                                                       bool unisolated) {
    std::string binary;
    auto candidates = sandboxdCandidates(explicitPath);
    for (const auto& c : candidates)
        if (::access(c.c_str(), X_OK) == 0) {
            binary = c;
            break;
        }
    if (binary.empty()) {
        std::string where;
        for (const auto& c : candidates) where += "\n  " + c;
        throw ConnectionError(
            "CONNECTION_FAILED",
            "no backend configured (SANDBOX_API_URL / SANDBOX_AGENT_URL unset) and the embedded "
            "default cannot find sandboxd; looked in:" +
                where + "\nset SANDBOXD_PATH or install sandboxd",
            0);
    }
    // One per process for each binary and isolation choice.
    static std::mutex m;
    static std::map<std::pair<std::string, bool>, std::weak_ptr<EmbeddedDaemon>> running;
    std::lock_guard lock(m);
    auto& current = running[{binary, unisolated}];
    if (auto d = current.lock()) return d;

    auto d = std::shared_ptr<EmbeddedDaemon>(new EmbeddedDaemon());
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/sandbox-embedded-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
        throw ConnectionError("CONNECTION_FAILED", "cannot create a temp dir for sandboxd", 0);
    // Searchable, not listable: sandboxd (as root) keeps its state here, and each sandbox's
    // bubblewrap, running as that sandbox's own uid, passes through it. The socket (0600) and
    // the log (0600) stay this user's alone.
    ::chmod(tmpl.c_str(), 0711);
    d->dir_ = tmpl;
    d->socket_ = tmpl + "/sandboxd.sock";
    std::string log = tmpl + "/sandboxd.log";

    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
        throw ConnectionError("CONNECTION_FAILED", "cannot create pipes for sandboxd", 0);
    int logFd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    std::vector<std::string> args = {binary, "--listen", "unix:" + d->socket_, "--state-dir",
                                     tmpl + "/state", "--exit-with-stdin",
                                     // Preview URLs (exposePort) for this host's browsers.
                                     "--preview-listen", "127.0.0.1:0"};
    if (unisolated) args.insert(args.end(), {"--isolation", "none"});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // The daemon must not inherit an API key meant for a remote bridge.
    std::vector<std::string> envStore;
    for (char** e = environ; *e; ++e)
        if (std::string_view(*e).rfind("SANDBOX_API_KEY=", 0) != 0) envStore.emplace_back(*e);
    std::vector<char*> envp;
    for (auto& e : envStore) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (logFd >= 0) posix_spawn_file_actions_adddup2(&fa, logFd, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int rc = posix_spawn(&d->pid_, binary.c_str(), &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(in[0]);
    ::close(out[1]);
    if (logFd >= 0) ::close(logFd);
    if (rc != 0) {
        ::close(in[1]);
        ::close(out[0]);
        throw ConnectionError("CONNECTION_FAILED",
                              "cannot start " + binary + ": " + std::strerror(rc), 0);
    }
    d->stdinFd_ = in[1];
    // Wait (bounded) for "sandboxd listening on ..." on its stdout.
    std::string line;
    char c;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{out[0], POLLIN, 0};
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - std::chrono::steady_clock::now())
                                        .count());
        if (::poll(&p, 1, std::max(left, 1)) <= 0) break;
        if (::read(out[0], &c, 1) != 1 || c == '\n') break;
        line.push_back(c);
    }
    ::close(out[0]);
    if (line.find("listening") == std::string::npos) {
        std::ifstream lf(log);
        std::stringstream text;
        text << lf.rdbuf();
        std::string why = text.str();
        // Never silently unisolated: say what the program can do about it.
        if (why.find("cannot isolate sandboxes") != std::string::npos)
            why +=
                "the SDK will not run sandboxes without isolation unless told to: "
                "ClientOptions::unisolated or SANDBOX_ISOLATION=none (development only)\n";
        throw ConnectionError("CONNECTION_FAILED",
                              "the embedded sandboxd (" + binary + ") did not start: " + why, 0);
    }
    // "sandboxd listening on unix:PATH (isolation: ...)"
    if (auto at = line.find("(isolation: "); at != std::string::npos && line.back() == ')')
        d->isolation_ = line.substr(at + 12, line.size() - at - 13);
    current = d;
    return d;
}

EmbeddedDaemon::~EmbeddedDaemon() {
    if (stdinFd_ >= 0) ::close(stdinFd_);  // sandboxd sees EOF and destroys its sandboxes
    if (pid_ > 0) {
        int status = 0;
        int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        if (pfd >= 0) {
            pollfd p{pfd, POLLIN, 0};
            if (::poll(&p, 1, 10000) == 0) ::kill(pid_, SIGKILL);
            ::close(pfd);
        }
        ::waitpid(pid_, &status, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
}

}  // namespace sandbox::detail
