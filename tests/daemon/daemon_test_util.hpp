#pragma once
#include <fcntl.h>
#include <unistd.h>
// Helpers shared by the sandboxd integration tests: bridge requests, /exec streams parsed with
// sandbox::SseParser (base64 chunks decoded), raw HTTP for what the client cannot send, bounded
// condition waits, hang guards, and /proc inspection of the daemon's processes, fds and mounts.
#include <arpa/inet.h>
#include <dirent.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client/http_client.hpp"
#include "core/base64.hpp"
#include "sandbox/sse.hpp"
#include "support/server_process.hpp"

namespace sandbox::testing::daemon {

using sandbox::testing::readFile;

using nlohmann::json;
using namespace std::chrono_literals;

/// {"error":...,"code":...}: the bridge error body, byte for byte.
inline std::string errorBody(const std::string& error, const std::string& code) {
    return "{\"error\":" + json(error).dump() + ",\"code\":" + json(code).dump() + "}";
}

inline std::string sandboxPath(const std::string& id, const std::string& sub = {}) {
    return "/v1/sandbox/" + id + sub;
}

/// A complete (non-streamed) response.
struct Reply {
    int status = 0;
    std::string contentType;
    std::string raw;
    json body;  ///< parsed body; null when it is not JSON
    client::HeaderList headers;
    std::optional<std::string> header(std::string_view name) const {
        for (const auto& [k, v] : headers)
            if (k == name) return v;
        return std::nullopt;
    }
};

inline Reply call(client::HttpConnection& c, std::string_view method, std::string_view target,
                  std::string_view body = {}, const client::HeaderList& headers = {}) {
    auto r = c.request(method, target, body, headers);
    Reply out;
    out.status = r.status;
    out.contentType = r.header("content-type").value_or("");
    out.raw = std::move(r.body);
    out.headers = std::move(r.headers);
    out.body = json::parse(out.raw, nullptr, false);
    if (out.body.is_discarded()) out.body = nullptr;
    return out;
}

/// Checks a bridge JSON error: status, content type and the exact body.
inline void checkBridgeError(const Reply& r, int status, const std::string& code,
                             const std::string& error) {
    INFO(r.raw);
    CHECK(r.status == status);
    CHECK(r.contentType == "application/json");
    CHECK(r.raw == errorBody(error, code));
}

inline void checkNotFoundText(const Reply& r) {
    INFO(r.raw);
    CHECK(r.status == 404);
    CHECK(r.contentType == "text/plain; charset=UTF-8");
    CHECK(r.raw == "404 Not Found");
}

/// POST /v1/sandbox → the new id.
inline std::string newSandbox(client::HttpConnection& c, const client::HeaderList& headers = {}) {
    auto r = call(c, "POST", "/v1/sandbox", {}, headers);
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    REQUIRE(r.body.is_object());
    REQUIRE(r.body["id"].is_string());
    return r.body["id"].get<std::string>();
}

/// One SSE event of /exec (comments are not events).
struct Event {
    std::string name;
    std::string data;
};

/// The outcome of POST /exec: the events in order, decoded output, the terminal event.
struct ExecResult {
    int status = 0;
    std::string contentType;
    std::string cacheControl;
    std::string raw;  ///< the raw body (only kept up to 1 MiB)
    json body;        ///< a non-SSE (error) answer, parsed
    std::vector<Event> events;
    std::string out, err;        ///< stdout / stderr bytes, each chunk decoded then concatenated
    int terminals = 0;           ///< exit + error events
    bool afterTerminal = false;  ///< an event came after the terminal one
    bool badBase64 = false;      ///< a stdout/stderr payload was not strict base64
    bool emptyChunk = false;     ///< a stdout/stderr event carried no bytes
    std::optional<int> exitCode;
    json error;  ///< the data of an `error` event
    std::vector<std::string> names() const {
        std::vector<std::string> n;
        for (const auto& e : events) n.push_back(e.name);
        return n;
    }
    /// Exactly one terminal event, last, and nothing malformed.
    bool wellFormed() const {
        return status == 200 && terminals == 1 && !afterTerminal && !badBase64 && !emptyChunk &&
               !events.empty() && (events.back().name == "exit" || events.back().name == "error");
    }
    std::string describe() const {
        std::string s = "status " + std::to_string(status) + ", events:";
        for (const auto& e : events)
            s += " " + e.name + (e.name == "exit" || e.name == "error" ? "(" + e.data + ")" : "");
        s += "\nstdout: " + out.substr(0, 1000) + "\nstderr: " + err.substr(0, 300);
        if (status != 200) s += "\nbody: " + raw.substr(0, 2000);
        return s;
    }
};

/// POST /v1/sandbox/<id>/exec with a raw body. `onEvent` (after the event was recorded) may
/// return false to hang up.
inline ExecResult execRaw(
    client::HttpConnection& c, const std::string& id, std::string_view body,
    const client::HeaderList& headers = {},
    const std::function<bool(const Event&, const ExecResult&)>& onEvent = {}) {
    ExecResult out;
    SseParser parser;
    bool keep = true;
    auto add = [&](const SseEvent& e) {
        Event ev{e.event, e.data};
        if (out.terminals > 0) out.afterTerminal = true;
        if (ev.name == "stdout" || ev.name == "stderr") {
            auto bytes = core::base64Decode(ev.data);
            if (!bytes)
                out.badBase64 = true;
            else if (bytes->empty())
                out.emptyChunk = true;
            else
                (ev.name == "stdout" ? out.out : out.err) += *bytes;
        } else if (ev.name == "exit") {
            ++out.terminals;
            json j = json::parse(ev.data, nullptr, false);
            if (j.is_object() && j["exit_code"].is_number_integer())
                out.exitCode = j["exit_code"].get<int>();
        } else if (ev.name == "error") {
            ++out.terminals;
            out.error = json::parse(ev.data, nullptr, false);
        }
        // Huge outputs are not kept event by event.
        if (ev.name == "stdout" && out.out.size() > (1u << 20)) ev.data.clear();
        out.events.push_back(std::move(ev));
        if (onEvent && !onEvent(out.events.back(), out)) keep = false;
    };
    auto resp =
        c.stream("POST", sandboxPath(id, "/exec"), body, headers, [&](std::string_view chunk) {
            if (out.raw.size() < (1u << 20)) out.raw.append(chunk);
            parser.feed(chunk, [&](SseEvent&& e) {
                if (keep) add(e);
            });
            return keep;
        });
    if (keep)
        if (auto last = parser.finish()) add(*last);
    out.status = resp.status;
    out.contentType = resp.header("content-type").value_or("");
    out.cacheControl = resp.header("cache-control").value_or("");
    if (out.status != 200) {
        out.body = json::parse(out.raw, nullptr, false);
        if (out.body.is_discarded()) out.body = nullptr;
    }
    return out;
}

inline ExecResult exec(client::HttpConnection& c, const std::string& id, const json& body,
                       const client::HeaderList& headers = {},
                       const std::function<bool(const Event&, const ExecResult&)>& onEvent = {}) {
    return execRaw(c, id, body.dump(), headers, onEvent);
}

/// exec of argv (plus extra body fields).
inline ExecResult run(client::HttpConnection& c, const std::string& id,
                      const std::vector<std::string>& argv, json extra = json::object()) {
    extra["argv"] = argv;
    return exec(c, id, extra);
}

/// `sh -c script` that must exit 0; returns its stdout.
inline std::string sh(client::HttpConnection& c, const std::string& id, const std::string& script) {
    auto r = run(c, id, {"sh", "-c", script});
    INFO(script);
    INFO(r.describe());
    CHECK(r.wellFormed());
    CHECK(r.exitCode == 0);
    return r.out;
}

/// Raw HTTP/1.1 over TCP to 127.0.0.1:port: `request` is sent as is (it should ask for
/// `Connection: close`); returns everything the server sent until it closed (or 30 s passed
/// without a byte: `closed`, when given, says which).
inline std::string rawHttp(int port, const std::string& request, bool* closed = nullptr) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    size_t off = 0;
    while (off < request.size()) {
        ssize_t n = ::send(fd, request.data() + off, request.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
    std::string resp;
    char buf[4096];
    for (;;) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            if (closed) *closed = n == 0;
            break;
        }
        resp.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return resp;
}

/// The status code of a raw HTTP response (0 when there is none).
inline int rawStatus(const std::string& resp) {
    if (resp.rfind("HTTP/1.1 ", 0) != 0 || resp.size() < 12) return 0;
    return std::atoi(resp.c_str() + 9);
}

/// The body of a raw non-chunked response.
inline std::string rawBody(const std::string& resp) {
    auto p = resp.find("\r\n\r\n");
    return p == std::string::npos ? std::string() : resp.substr(p + 4);
}

/// Polls `cond` (every few ms) until it holds or `timeout` passes. A bounded condition wait,
/// never a synchronisation by sleeping.
inline bool waitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (cond()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

/// Runs `f` on a thread and waits at most `limit`. If it does not finish in time the daemon is
/// killed (so the blocked client sees EOF and the thread ends) and false is returned: a hang
/// is reported as a failure, never waited out.
inline bool finishesWithin(DaemonFixture& d, std::chrono::milliseconds limit,
                           const std::function<void()>& f) {
    std::packaged_task<void()> task(f);
    auto done = task.get_future();
    std::thread t(std::move(task));
    bool ok = done.wait_for(limit) == std::future_status::ready;
    if (!ok) d.server.kill();
    t.join();
    try {
        done.get();
    } catch (const std::exception& e) {
        FAIL_CHECK("the request threw: " << e.what());
    }
    return ok;
}

inline void writeFile(const std::string& path, std::string_view data) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

inline bool pathExists(const std::string& path) {
    std::error_code ec;
    return std::filesystem::exists(std::filesystem::symlink_status(path, ec));
}

inline std::string randomBytes(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; i += 8) {
        auto v = rng();
        for (std::size_t k = 0; k < 8 && i + k < n; ++k) s[i + k] = static_cast<char>(v >> (8 * k));
    }
    return s;
}

// ---- /proc ---------------------------------------------------------------------------------

struct ProcInfo {
    pid_t pid = 0;
    pid_t ppid = 0;
    char state = '?';
    std::string comm;
};

/// Every process of the host (as this test sees them).
inline std::vector<ProcInfo> processes() {
    std::vector<ProcInfo> out;
    DIR* d = ::opendir("/proc");
    if (!d) return out;
    while (auto* e = ::readdir(d)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        std::string line = readFile(std::string("/proc/") + e->d_name + "/stat");
        auto lp = line.find('('), rp = line.rfind(')');
        if (lp == std::string::npos || rp == std::string::npos || rp + 4 >= line.size()) continue;
        ProcInfo p;
        p.pid = static_cast<pid_t>(std::atol(e->d_name));
        p.comm = line.substr(lp + 1, rp - lp - 1);
        p.state = line[rp + 2];
        p.ppid = static_cast<pid_t>(std::atol(line.c_str() + rp + 4));
        out.push_back(p);
    }
    ::closedir(d);
    return out;
}

/// The live (not zombie) descendants of `root`.
inline std::vector<ProcInfo> descendants(pid_t root) {
    auto all = processes();
    std::multimap<pid_t, const ProcInfo*> children;
    for (const auto& p : all) children.emplace(p.ppid, &p);
    std::vector<ProcInfo> out;
    std::vector<pid_t> todo{root};
    while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        auto [b, e] = children.equal_range(p);
        for (auto it = b; it != e; ++it) {
            if (it->second->state != 'Z' && it->second->state != 'X') out.push_back(*it->second);
            todo.push_back(it->second->pid);
        }
    }
    return out;
}

/// The sandbox-agent processes among `procs`. A child an agent is spawning (its spare shell, a
/// command) carries the agent's name until it execs: those, children of an agent, are not
/// agents.
inline std::vector<pid_t> agentsAmong(const std::vector<ProcInfo>& procs) {
    std::set<pid_t> named;
    for (const auto& p : procs)
        if (p.comm == "sandbox-agent") named.insert(p.pid);
    std::vector<pid_t> out;
    for (const auto& p : procs)
        if (p.comm == "sandbox-agent" && !named.count(p.ppid)) out.push_back(p.pid);
    return out;
}

/// Host pids of the sandbox-agent processes under the daemon.
inline std::vector<pid_t> agentPids(pid_t daemon) {
    return agentsAmong(descendants(daemon));
}

/// The host processes of one sandbox: its launcher (a child of the daemon whose command line
/// names the sandbox's state directory) and everything under it.
inline std::vector<ProcInfo> sandboxProcesses(pid_t daemon, const std::string& id) {
    std::vector<ProcInfo> out;
    std::string needle = "/sandboxes/" + id + "/";
    for (const auto& p : processes()) {
        if (p.ppid != daemon || p.state == 'Z') continue;
        std::string cmd = readFile("/proc/" + std::to_string(p.pid) + "/cmdline");
        if (cmd.find(needle) == std::string::npos) continue;
        out.push_back(p);
        for (const auto& c : descendants(p.pid)) out.push_back(c);
    }
    return out;
}

inline bool processGone(pid_t pid) {
    std::string line = readFile("/proc/" + std::to_string(pid) + "/stat");
    auto rp = line.rfind(')');
    if (rp == std::string::npos || rp + 2 >= line.size()) return true;
    char state = line[rp + 2];
    return state == 'Z' || state == 'X';
}

inline int fdCount(pid_t pid) {
    int n = 0;
    DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str());
    if (!d) return -1;
    while (auto* e = ::readdir(d))
        if (e->d_name[0] != '.') ++n;
    ::closedir(d);
    return n;
}

/// utime + stime of a process, in clock ticks.
inline long cpuTicks(pid_t pid) {
    std::string line = readFile("/proc/" + std::to_string(pid) + "/stat");
    auto rp = line.rfind(')');
    if (rp == std::string::npos) return -1;
    std::istringstream in(line.substr(rp + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::stol(field);
        if (i == 15) stime = std::stol(field);
    }
    return utime + stime;
}

/// The sockets among a process's open descriptors.
inline int socketCount(pid_t pid) {
    int n = 0;
    std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        std::error_code rec;
        if (std::filesystem::read_symlink(e.path(), rec).string().rfind("socket:", 0) == 0) ++n;
    }
    return n;
}

/// A field of /proc/PID/status in kB ("VmRSS", "VmHWM"); -1 when absent.
inline long statusKb(pid_t pid, const std::string& field) {
    std::string s = readFile("/proc/" + std::to_string(pid) + "/status");
    auto at = s.find("\n" + field + ":");
    if (at == std::string::npos) return -1;
    return std::atol(s.c_str() + at + field.size() + 2);
}

/// The host's mount table (this test's mount namespace).
/// The mounts sandboxd sees (its own mount namespace when it runs as root: the workspaces'
/// tmpfs and bucket mounts live there, and the host sees none of them).
inline std::string daemonMounts(pid_t daemon) {
    return readFile("/proc/" + std::to_string(daemon) + "/mounts");
}

/// The cgroup directories sandboxd made for its sandboxes: the children of its group
/// sandboxd-<pid> in each v1 hierarchy (and in the v2 root when that is where it made them).
inline std::vector<std::string> daemonCgroups(pid_t daemon) {
    std::vector<std::string> out;
    const std::string group = "sandboxd-" + std::to_string(daemon);
    for (const char* root :
         {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"}) {
        std::error_code ec;
        for (const auto& e :
             std::filesystem::directory_iterator(std::string(root) + "/" + group, ec))
            if (e.is_directory()) out.push_back(e.path());
    }
    return out;
}

/// Whether the daemon's own group sandboxd-<pid> exists in any hierarchy.
inline bool daemonCgroupExists(pid_t daemon) {
    const std::string group = "sandboxd-" + std::to_string(daemon);
    for (const char* root :
         {"/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"})
        if (std::filesystem::exists(std::string(root) + "/" + group)) return true;
    return false;
}

/// Whether bubblewrap can make namespaces here (else the isolation tests are skipped).
inline bool bwrapAvailable() {
    static const bool ok =
        std::system("bwrap --unshare-all --ro-bind / / true >/dev/null 2>&1") == 0;
    return ok;
}

}  // namespace sandbox::testing::daemon
