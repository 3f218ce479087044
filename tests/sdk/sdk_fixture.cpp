#include "sdk/sdk_fixture.hpp"

#include <fcntl.h>
#include <unistd.h>
#include "core/base64.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <numeric>
#include <random>
#include <stdexcept>

namespace sandbox::testing::sdk {

namespace {

// A bridge that is already running, given by SANDBOX_API_URL (+ SANDBOX_API_KEY) in narrow
// mode: Cloudflare's bridge Worker served by tests/compat/bridge/with-bridge.sh.
struct ExternalBridge {
    std::string url, key;
};
std::optional<ExternalBridge> externalBridge;

// The SDK reads these when an option is empty; the suite configures every client explicitly.
const bool kEnvCleared = [] {
    const char* m = std::getenv("SANDBOX_TEST_MODE");
    const char* url = std::getenv("SANDBOX_API_URL");
    if (m && std::string(m) == "narrow" && url && *url) {
        const char* key = std::getenv("SANDBOX_API_KEY");
        externalBridge = ExternalBridge{url, key ? key : ""};
    }
    ::unsetenv("SANDBOX_API_URL");
    ::unsetenv("SANDBOX_AGENT_URL");
    ::unsetenv("SANDBOX_API_KEY");
    ::unsetenv("SANDBOXD_PATH");
    return true;
}();

struct Backend {
    std::unique_ptr<AgentFixture> agent;
    std::unique_ptr<DaemonFixture> daemon;
    std::optional<Client> client;
    std::optional<Sandbox> shared;
    std::string workspace = "/workspace";

    Backend() {
        (void)kEnvCleared;
        switch (mode()) {
            case Mode::Agent:
                agent = std::make_unique<AgentFixture>();
                workspace = agent->workspace();
                break;
            case Mode::Narrow:
                if (!externalBridge)
                    throw std::runtime_error(
                        "SANDBOX_TEST_MODE=narrow needs Cloudflare's bridge in SANDBOX_API_URL: "
                        "run it through tests/compat/bridge/with-bridge.sh (ctest does)");
                break;
            case Mode::Bridge:
                daemon = std::make_unique<DaemonFixture>("k");
                break;
            case Mode::Embedded:
                break;
        }
        client.emplace(clientOptionsFor());
        shared.emplace(getSandbox(*client, "shared-" + std::to_string(::getpid())));
    }

    ClientOptions clientOptionsFor() const {
        ClientOptions o;
        switch (mode()) {
            case Mode::Embedded:
                o.sandboxdPath = binPath("sandboxd");
                break;
            case Mode::Bridge:
            case Mode::Narrow:
                o.apiUrl = externalBridge ? externalBridge->url : daemon->server.url();
                o.apiKey = externalBridge ? externalBridge->key : "k";
                break;
            case Mode::Agent:
                o.agentUrl = agent->server.url();
                break;
        }
        return o;
    }
};

Backend& backend() {
    static Backend b;
    return b;
}

}  // namespace

Mode mode() {
    static const Mode m = [] {
        const char* v = std::getenv("SANDBOX_TEST_MODE");
        std::string s = v ? v : "embedded";
        if (s == "embedded") return Mode::Embedded;
        if (s == "bridge") return Mode::Bridge;
        if (s == "narrow") return Mode::Narrow;
        if (s == "agent") return Mode::Agent;
        throw std::runtime_error(
            "SANDBOX_TEST_MODE must be embedded, bridge, narrow or agent, not '" + s + "'");
    }();
    return m;
}

std::string modeName() {
    switch (mode()) {
        case Mode::Embedded:
            return "embedded";
        case Mode::Bridge:
            return "bridge";
        case Mode::Narrow:
            return "narrow";
        case Mode::Agent:
            return "agent";
    }
    return "?";
}

ClientOptions clientOptions() {
    return backend().clientOptionsFor();
}
const Client& client() {
    return *backend().client;
}
std::string backendUrl() {
    if (externalBridge) return externalBridge->url;
    return backend().daemon ? backend().daemon->server.url() : std::string();
}
std::string ws() {
    return backend().workspace;
}

std::string uniqueName(const std::string& prefix) {
    static std::atomic<int> n{0};
    return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

Sandbox freshSandbox(const std::string& prefix) {
    return getSandbox(client(), uniqueName(prefix));
}

const Sandbox& shared() {
    return *backend().shared;
}

std::string freshDir(const std::string& prefix) {
    std::string d = ws() + "/" + uniqueName(prefix);
    shared().mkdir(d, {.recursive = true});
    return d;
}

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (cond()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
}

std::string allBytes(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(i % 256);
    std::mt19937 rng(seed);
    std::shuffle(s.begin(), s.end(), rng);
    return s;
}

int closedPort() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        throw std::runtime_error("cannot bind a loopback port");
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

int countProcesses(const Sandbox& sb, const std::string& marker) {
    // The marker is split in the script so that this command's own command line never matches.
    std::string half = marker.substr(0, marker.size() / 2), rest = marker.substr(marker.size() / 2);
    std::string script =
        "m='" + half + "''" + rest +
        "'; n=0; for f in /proc/[0-9]*/cmdline; do c=$(tr '\\0' ' ' < \"$f\" 2>/dev/null); "
        "case \"$c\" in *\"$m\"*) n=$((n+1));; esac; done; echo $n";
    auto r = sb.exec(script);
    return std::atoi(r.stdoutText.c_str());
}

namespace {
std::vector<pid_t> hostProcesses(const std::string& marker) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string cmd = readFile((e.path() / "cmdline").string());
        std::replace(cmd.begin(), cmd.end(), '\0', ' ');
        if (cmd.find(marker) != std::string::npos) out.push_back(std::atoi(name.c_str()));
    }
    return out;
}
}  // namespace

int countHostProcesses(const std::string& marker) {
    return static_cast<int>(hostProcesses(marker).size());
}

void killHostProcesses(const std::string& marker) {
    for (pid_t p : hostProcesses(marker))
        if (p != ::getpid()) ::kill(p, SIGKILL);
}

int killAgentOnHost(const std::string& id) {
    int killed = 0;
    // sandboxd knows the sandbox by the bridge id the SDK makes of its name (base32).
    const std::string needle = "/sandboxes/" + core::base32Lower(id) + "/workspace";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = e.path().filename().string();
        if (name.find_first_not_of("0123456789") != std::string::npos) continue;
        std::string comm = readFile((e.path() / "comm").string());
        if (comm != "sandbox-agent\n") continue;
        std::string stat = readFile((e.path() / "stat").string());
        auto rp = stat.rfind(')');
        if (rp == std::string::npos || rp + 4 >= stat.size()) continue;
        const long ppid = std::atol(stat.c_str() + rp + 4);
        std::string parent = readFile("/proc/" + std::to_string(ppid) + "/cmdline");
        std::replace(parent.begin(), parent.end(), '\0', ' ');
        if (parent.find(needle) == std::string::npos) continue;
        if (::kill(std::atoi(name.c_str()), SIGKILL) == 0) ++killed;
    }
    return killed;
}

void writeHostFile(const std::string& path, const std::string& content) {
    std::ofstream f(path, std::ios::binary);
    f << content;
    if (!f) throw std::runtime_error("cannot write " + path);
}

// ---- FakeServer ------------------------------------------------------------------------------

FakeServer::FakeServer(Respond respond) : respond_(std::move(respond)) {
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listenFd_, 16) != 0 ||
        ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("FakeServer: cannot listen");
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
        for (;;) {
            int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR) continue;
                return;  // shut down
            }
            serve(fd);
            ::close(fd);
        }
    });
}

FakeServer::~FakeServer() {
    ::shutdown(listenFd_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(listenFd_);
}

void FakeServer::serve(int fd) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[65536];
    std::size_t headEnd;
    while ((headEnd = in.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        in.append(buf, static_cast<std::size_t>(n));
    }
    std::string head = in.substr(0, headEnd);
    std::string body = in.substr(headEnd + 4);
    std::size_t length = 0;
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (auto p = lower.find("content-length:"); p != std::string::npos)
        length = std::strtoull(lower.c_str() + p + 15, nullptr, 10);
    while (body.size() < length) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) return;
        body.append(buf, static_cast<std::size_t>(n));
    }
    auto sp1 = head.find(' ');
    auto sp2 = head.find(' ', sp1 + 1);
    std::string out = respond_(head.substr(0, sp1), head.substr(sp1 + 1, sp2 - sp1 - 1), body);
    std::size_t off = 0;
    while (off < out.size()) {
        ssize_t n = ::write(fd, out.data() + off, out.size() - off);
        if (n <= 0) return;
        off += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
}

std::string httpResponse(int status, const std::string& contentType, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + contentType +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body;
}

std::string chunkedResponse(int status, const std::string& contentType,
                            const std::vector<std::string>& chunks, bool terminate) {
    char hex[32];
    std::string out = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + contentType +
                      "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    for (const auto& c : chunks) {
        std::snprintf(hex, sizeof hex, "%zx", c.size());
        out += std::string(hex) + "\r\n" + c + "\r\n";
    }
    if (terminate) out += "0\r\n\r\n";
    return out;
}

}  // namespace sandbox::testing::sdk
