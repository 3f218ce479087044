#include "support/server_process.hpp"

#include <sys/stat.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

extern char** environ;

namespace sandbox::testing {

std::vector<ProcEntry> childrenOf(pid_t parent) {
    std::vector<ProcEntry> out;
    DIR* d = ::opendir("/proc");
    while (dirent* e = d ? ::readdir(d) : nullptr) {
        char* end = nullptr;
        long pid = std::strtol(e->d_name, &end, 10);
        if (*end != '\0' || pid <= 0) continue;
        std::string st = readFile("/proc/" + std::to_string(pid) + "/stat");
        auto lp = st.find('('), rp = st.rfind(')');
        if (lp == std::string::npos || rp == std::string::npos || rp + 4 >= st.size()) continue;
        if (std::strtol(st.c_str() + rp + 4, nullptr, 10) != parent) continue;
        out.push_back({static_cast<pid_t>(pid), st.substr(lp + 1, rp - lp - 1), st[rp + 2]});
    }
    if (d) ::closedir(d);
    return out;
}

std::string readFile(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string binPath(const std::string& name) {
    // SANDBOX_TEST_BIN_DIR runs the suites against other builds of the servers (e.g. an older
    // one, to see a new escape test fail there).
    const char* dir = std::getenv("SANDBOX_TEST_BIN_DIR");
    return std::string(dir && *dir ? dir : SANDBOX_BIN_DIR) + "/" + name;
}

TempDir::TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sandbox-test-XXXXXX";
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    // Searchable, not listable: a sandboxd run as root keeps its state directory here, and its
    // sandboxes' bubblewrap (running as their own uids) must be able to pass through.
    ::chmod(tmpl.c_str(), 0711);
    path_ = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

ServerProcess::ServerProcess(const std::string& binary, std::vector<std::string> args,
                             std::vector<std::string> extraEnv, const std::string& stderrPath) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    args.insert(args.begin(), binary);
    const bool ownListen = std::find(args.begin(), args.end(), "--listen") != args.end();
    if (!ownListen) {
        args.push_back("--listen");
        args.push_back("127.0.0.1:0");
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> envStore;
    auto overridden = [&](std::string_view entry) {
        auto name = entry.substr(0, entry.find('=') + 1);
        for (const auto& e : extraEnv)
            if (e.compare(0, name.size(), name) == 0) return true;
        return false;
    };
    for (char** e = environ; *e; ++e)
        if (!overridden(*e)) envStore.emplace_back(*e);
    for (auto& e : extraEnv) envStore.push_back(e);
    std::vector<char*> envp;
    for (auto& e : envStore) envp.push_back(e.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    if (!stderrPath.empty())
        posix_spawn_file_actions_addopen(&fa, 2, stderrPath.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                         0644);
    int rc = posix_spawn(&pid_, binary.c_str(), &fa, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
        ::close(fds[0]);
        throw std::runtime_error("cannot start " + binary);
    }
    std::string line;
    char c;
    while (::read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
    ::close(fds[0]);
    auto pos = line.rfind("port ");
    if (ownListen && pos == std::string::npos && line.find(" unix:") != std::string::npos) return;
    if (pos == std::string::npos) {
        kill();
        throw std::runtime_error(binary + " did not report its port: '" + line + "'");
    }
    port_ = std::atoi(line.c_str() + pos + 5);
}

void ServerProcess::kill() {
    if (pid_ > 0) ::kill(pid_, SIGKILL);
}

ServerProcess::~ServerProcess() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    // Wait (bounded) for the exit through a pidfd, then force.
    int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (pfd >= 0) {
        pollfd p{pfd, POLLIN, 0};
        ::poll(&p, 1, 10000);
        ::close(pfd);
    }
    if (::waitpid(pid_, &status, WNOHANG) == pid_) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
}

client::HttpConnection ServerProcess::connect() const {
    return client::HttpConnection(client::Endpoint::parse(url()));
}

AgentFixture::AgentFixture()
    : server(binPath("sandbox-agent"),
             {"--workspace", dir.path(), "--runtime-dir", runtime.path() + "/pipes"}),
      http(server.connect()) {}

namespace {

std::vector<std::string> daemonArgs(const std::string& stateDir, const std::string& apiKey,
                                    std::vector<std::string> extra) {
    std::vector<std::string> args{"--state-dir", stateDir};
    if (!apiKey.empty()) {
        args.push_back("--api-key");
        args.push_back(apiKey);
    }
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
}

}  // namespace

// The environment's SANDBOX_API_KEY is cleared: auth is on only when the test passes a key.
DaemonFixture::DaemonFixture(const std::string& apiKey, std::vector<std::string> extraArgs)
    : server(binPath("sandboxd"), daemonArgs(dir.path() + "/state", apiKey, std::move(extraArgs)),
             {"SANDBOX_API_KEY="}, dir.path() + "/sandboxd.log"),
      http(server.connect()) {}

std::string DaemonFixture::log() const {
    std::ifstream f(dir.path() + "/sandboxd.log", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

client::HttpResponse AgentFixture::post(const std::string& target, const std::string& body) {
    return http.request("POST", target, body);
}

}  // namespace sandbox::testing
