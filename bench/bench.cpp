// sandbox-bench: the project's speed measurements. One JSON object per line:
//   {"name": "...", "value": <number>, "unit": "..."}
// Run from the build tree (it starts build/bin/sandbox-agent and build/bin/sandboxd, found next
// to itself, on ephemeral loopback ports with temp directories).
// Usage: sandbox-bench [--quick] [--only NAME[,NAME...]]
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <simdjson.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/http_client.hpp"
#include "core/base64.hpp"
#include "sandbox/sandbox.hpp"
#include "sandbox/sse.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
bool gQuick = false;
std::set<std::string> gOnly;

bool wanted(const std::string& name) {
    return gOnly.empty() || gOnly.count(name);
}

void emit(const std::string& name, double value, const std::string& unit) {
    std::printf("{\"name\": \"%s\", \"value\": %.3f, \"unit\": \"%s\"}\n", name.c_str(), value,
                unit.c_str());
    std::fflush(stdout);
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t idx = static_cast<size_t>(p * (v.size() - 1) + 0.5);
    return v[idx];
}

double usSince(Clock::time_point t) {
    return std::chrono::duration<double, std::micro>(Clock::now() - t).count();
}

std::string selfDir() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    return std::filesystem::path(std::string(buf, static_cast<size_t>(n))).parent_path();
}

// A server child (sandbox-agent or sandboxd) on an ephemeral loopback port with a temp dir.
struct ServerChild {
    pid_t pid = -1;
    int port = 0;
    std::string dir;
    ServerChild(const std::string& name, const std::vector<std::string>& extra) {
        char tmpl[] = "/tmp/sandbox-bench-XXXXXX";
        dir = ::mkdtemp(tmpl);
        std::string bin = selfDir() + "/" + name;
        int fds[2];
        if (::pipe(fds) != 0) throw std::runtime_error("pipe");
        std::vector<std::string> args = {bin, "--listen", "127.0.0.1:0"};
        for (const auto& e : extra) args.push_back(e == "{dir}" ? dir : e);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        int devnull = ::open("/dev/null", O_WRONLY);
        posix_spawn_file_actions_adddup2(&fa, devnull, 2);
        if (posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start " + bin);
        posix_spawn_file_actions_destroy(&fa);
        ::close(devnull);
        ::close(fds[1]);
        std::string line;
        char c;
        while (::read(fds[0], &c, 1) == 1 && c != '\n') line.push_back(c);
        ::close(fds[0]);
        auto p = line.rfind("port ");
        if (p == std::string::npos) throw std::runtime_error(name + " did not start: " + line);
        port = std::atoi(line.c_str() + p + 5);
    }
    ~ServerChild() {
        ::kill(pid, SIGTERM);
        int st;
        ::waitpid(pid, &st, 0);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    sandbox::client::HttpConnection connect() const {
        return sandbox::client::HttpConnection(
            sandbox::client::Endpoint::parse("http://127.0.0.1:" + std::to_string(port)));
    }
};

struct Agent : ServerChild {
    Agent() : ServerChild("sandbox-agent", {"--workspace", "{dir}"}) {}
};

struct Daemon : ServerChild {
    Daemon() : ServerChild("sandboxd", {"--state-dir", "{dir}"}) {}
};

// Runs argv through the bridge exec route; returns the exit code (-1 if none arrived).
int bridgeExec(sandbox::client::HttpConnection& http, const std::string& id,
               const std::string& argvJson) {
    sandbox::SseParser parser;
    int exitCode = -1;
    http.stream("POST", "/v1/sandbox/" + id + "/exec", "{\"argv\":" + argvJson + "}", {},
                [&](std::string_view chunk) {
                    parser.feed(chunk, [&](sandbox::SseEvent&& ev) {
                        if (ev.event == "exit") {
                            auto pos = ev.data.find(':');
                            exitCode = std::atoi(ev.data.c_str() + pos + 1);
                        }
                    });
                    return true;
                });
    return exitCode;
}

std::string newSandbox(sandbox::client::HttpConnection& http) {
    auto r = http.request("POST", "/v1/sandbox");
    auto p = r.body.find("\"id\":\"");
    if (r.status != 200 || p == std::string::npos)
        throw std::runtime_error("create failed: " + r.body);
    return r.body.substr(p + 6, r.body.find('"', p + 6) - p - 6);
}

void benchDaemon() {
    Daemon d;
    auto http = d.connect();
    if (wanted("sandbox_create_p50_us")) {
        int n = gQuick ? 10 : 40;
        std::vector<double> samples;
        for (int i = 0; i < n; ++i) {
            auto t = Clock::now();
            std::string id = newSandbox(http);
            if (bridgeExec(http, id, "[\"true\"]") != 0)
                throw std::runtime_error("exec of true failed");
            samples.push_back(usSince(t));
            http.request("DELETE", "/v1/sandbox/" + id);
        }
        emit("sandbox_create_p50_us", percentile(samples, 0.5), "us");
    }
    std::string id = newSandbox(http);
    bridgeExec(http, id, "[\"true\"]");
    if (wanted("bridge_exec_true_p50_us")) {
        int n = gQuick ? 100 : 500;
        std::vector<double> samples;
        for (int i = 0; i < n + 20; ++i) {
            auto t = Clock::now();
            if (bridgeExec(http, id, "[\"true\"]") != 0)
                throw std::runtime_error("exec of true failed");
            if (i >= 20) samples.push_back(usSince(t));
        }
        emit("bridge_exec_true_p50_us", percentile(samples, 0.5), "us");
    }
    if (wanted("bridge_file_roundtrip_32mib_mb_s")) {
        std::string data(32u << 20, '\0');
        std::mt19937_64 rng(42);
        for (size_t i = 0; i + 8 <= data.size(); i += 8) {
            auto v = rng();
            std::memcpy(data.data() + i, &v, 8);
        }
        double best = 0;
        for (int rep = 0; rep < 3; ++rep) {
            auto t = Clock::now();
            auto w = http.request("PUT", "/v1/sandbox/" + id + "/file/workspace/big.bin", data,
                                  {{"content-type", "application/octet-stream"}});
            auto r = http.request("GET", "/v1/sandbox/" + id + "/file/workspace/big.bin");
            double secs = std::chrono::duration<double>(Clock::now() - t).count();
            if (w.status != 200 || r.status != 200 || r.body != data)
                throw std::runtime_error("32 MiB round trip mismatch");
            best = std::max(best, 2 * data.size() / 1e6 / secs);
        }
        emit("bridge_file_roundtrip_32mib_mb_s", best, "MB/s");
    }
    http.request("DELETE", "/v1/sandbox/" + id);
}

void benchSpawn() {
    int n = gQuick ? 100 : 500;
    std::vector<double> samples;
    char arg0[] = "/bin/true";
    char* argv[] = {arg0, nullptr};
    for (int i = 0; i < n + 20; ++i) {
        auto t = Clock::now();
        pid_t pid;
        posix_spawn(&pid, "/bin/true", nullptr, nullptr, argv, environ);
        int st;
        ::waitpid(pid, &st, 0);
        if (i >= 20) samples.push_back(usSince(t));
    }
    emit("spawn_true_p50_us", percentile(samples, 0.5), "us");
}

void benchExec(Agent& agent, const std::string& name, const std::string& body) {
    auto http = agent.connect();
    int n = gQuick ? 200 : 1000;
    std::vector<double> samples;
    for (int i = 0; i < n + 50; ++i) {
        auto t = Clock::now();
        auto r = http.request("POST", "/api/execute", body);
        double us = usSince(t);
        if (r.status != 200 || r.body.find("\"exitCode\":0") == std::string::npos)
            throw std::runtime_error(name + ": unexpected response " + r.body);
        if (i >= 50) samples.push_back(us);
    }
    emit(name, percentile(samples, 0.5), "us");
}

void benchStream(Agent& agent) {
    auto http = agent.connect();
    // The producer is a file of 1000-character lines (made once, untimed) so that the number
    // measures the agent and the client, not the speed of a base64 encoder on a shared core.
    std::string mb = gQuick ? "64M" : "256M";
    auto made = http.request(
        "POST", "/api/execute",
        R"({"command":"head -c )" + mb + R"( /dev/zero | base64 -w 999 > stream.txt"})");
    if (made.status != 200) throw std::runtime_error("cannot prepare stream input: " + made.body);
    std::string body = R"({"command":"cat stream.txt"})";
    sandbox::SseParser parser;
    simdjson::ondemand::parser json;
    std::size_t bytes = 0;
    bool complete = false;
    auto t = Clock::now();
    auto onEvent = [&](sandbox::SseEvent&& ev) {
        ev.data.reserve(ev.data.size() + simdjson::SIMDJSON_PADDING);
        auto doc = json.iterate(ev.data.data(), ev.data.size(), ev.data.capacity());
        std::string_view type = doc["type"].get_string().value();
        if (type == "stdout")
            bytes += doc["data"].get_string().value().size();
        else if (type == "complete")
            complete = true;
    };
    auto r = http.stream("POST", "/api/execute/stream", body, {}, [&](std::string_view chunk) {
        parser.feed(chunk, onEvent);
        return true;
    });
    if (auto last = parser.finish()) onEvent(std::move(*last));
    double secs = std::chrono::duration<double>(Clock::now() - t).count();
    if (r.status != 200 || !complete) throw std::runtime_error("stream did not complete");
    emit("agent_stream_mb_s", bytes / 1e6 / secs, "MB/s");
}

void benchSseParse() {
    std::string payload(900, 'x');
    std::string one = "data: {\"type\":\"stdout\",\"data\":\"" + payload +
                      "\",\"timestamp\":\"2026-11-22T03:35:05.187Z\"}\n\n";
    std::string stream;
    std::size_t target = gQuick ? (16u << 20) : (128u << 20);
    while (stream.size() < target) stream += one;
    std::size_t events = 0, data = 0;
    double best = 0;
    for (int rep = 0; rep < 3; ++rep) {
        sandbox::SseParser parser;
        auto t = Clock::now();
        for (std::size_t off = 0; off < stream.size(); off += 1024)
            parser.feed(std::string_view(stream).substr(off, 1024),
                        [&](const sandbox::SseEvent& ev) {
                            ++events;
                            data += ev.data.size();
                        });
        double secs = std::chrono::duration<double>(Clock::now() - t).count();
        best = std::max(best, stream.size() / 1e6 / secs);
    }
    if (events == 0 || data == 0) throw std::runtime_error("parser produced nothing");
    emit("sse_parse_mb_s", best, "MB/s");
}

}  // namespace

// The SDK on the embedded default (a private sandboxd found next to this program).
void benchSdk() {
    sandbox::Client client(sandbox::ClientOptions{.sandboxdPath = selfDir() + "/sandboxd"});
    auto sb = sandbox::getSandbox(client, "bench");
    sb.exec("true");
    if (wanted("sdk_exec_true_p50_us")) {
        int n = gQuick ? 200 : 1000;
        std::vector<double> samples;
        for (int i = 0; i < n + 50; ++i) {
            auto t = Clock::now();
            auto r = sb.exec("true");
            double us = usSince(t);
            if (!r.success) throw std::runtime_error("sdk exec of true failed");
            if (i >= 50) samples.push_back(us);
        }
        emit("sdk_exec_true_p50_us", percentile(samples, 0.5), "us");
    }
    if (wanted("sdk_stream_mb_s")) {
        std::string mb = gQuick ? "64M" : "256M";
        sb.exec("head -c " + mb + " /dev/zero | base64 -w 999 > /workspace/stream.txt");
        std::size_t bytes = 0;
        bool complete = false;
        auto t = Clock::now();
        for (const auto& ev : sb.execStream("cat /workspace/stream.txt")) {
            if (ev.type == sandbox::ExecEvent::Type::Stdout) bytes += ev.data.size();
            if (ev.type == sandbox::ExecEvent::Type::Complete) complete = true;
        }
        double secs = std::chrono::duration<double>(Clock::now() - t).count();
        if (!complete) throw std::runtime_error("sdk stream did not complete");
        emit("sdk_stream_mb_s", bytes / 1e6 / secs, "MB/s");
    }
    if (wanted("sdk_file_roundtrip_32mib_mb_s")) {
        std::string data(32u << 20, '\0');
        std::mt19937_64 rng(7);
        for (size_t i = 0; i + 8 <= data.size(); i += 8) {
            auto v = rng();
            std::memcpy(data.data() + i, &v, 8);
        }
        std::string b64 = sandbox::core::base64Encode(data);
        double best = 0;
        for (int rep = 0; rep < 3; ++rep) {
            auto t = Clock::now();
            sb.writeFile("/workspace/big.bin", b64, {.encoding = sandbox::Encoding::Base64});
            auto r = sb.readFile("/workspace/big.bin");
            double secs = std::chrono::duration<double>(Clock::now() - t).count();
            if (r.bytes() != data) throw std::runtime_error("sdk 32 MiB round trip mismatch");
            best = std::max(best, 2 * data.size() / 1e6 / secs);
        }
        emit("sdk_file_roundtrip_32mib_mb_s", best, "MB/s");
    }
    sb.destroy();
}

// A keystroke to its echo through the SDK's terminal on the embedded default: the byte goes
// SDK -> sandboxd -> the agent -> the PTY, and its echo (the terminal's own, under `cat`) comes
// back the same way.
void benchPty() {
    sandbox::Client client(sandbox::ClientOptions{.sandboxdPath = selfDir() + "/sandboxd"});
    auto sb = sandbox::getSandbox(client, "bench-pty");
    auto pty = sb.terminal();
    pty.write("echo bench-re\"ady\"; cat > /dev/null\n");
    std::string seen;
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (seen.find("bench-ready") == std::string::npos) {
        if (Clock::now() > deadline) throw std::runtime_error("pty bench: no prompt");
        auto chunk = pty.read(std::chrono::seconds(30));
        if (!chunk) throw std::runtime_error("pty bench: terminal ended");
        seen += *chunk;
    }
    int n = gQuick ? 200 : 1000;
    std::vector<double> samples;
    for (int i = 0; i < n + 20; ++i) {
        if (i % 64 == 63) {  // keep the line short: end it (cat discards it)
            pty.write("\n");
            for (std::string got; got.find('\n') == std::string::npos;)
                got += pty.read(std::chrono::seconds(30)).value_or("\n");
        }
        auto t = Clock::now();
        pty.write("k");
        for (std::string got; got.find('k') == std::string::npos;) {
            auto chunk = pty.read(std::chrono::seconds(30));
            if (!chunk) throw std::runtime_error("pty bench: terminal ended");
            got += *chunk;
        }
        double us = usSince(t);
        if (i >= 20) samples.push_back(us);
    }
    emit("pty_echo_roundtrip_p50_us", percentile(samples, 0.5), "us");
    pty.close();
    sb.destroy();
}

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--quick")
            gQuick = true;
        else if (a == "--only" && i + 1 < argc) {
            std::stringstream ss(argv[++i]);
            std::string item;
            while (std::getline(ss, item, ',')) gOnly.insert(item);
        } else if (a == "-h" || a == "--help") {
            std::cout << "usage: sandbox-bench [--quick] [--only NAME[,NAME...]]\n"
                         "Prints one JSON object per line: {\"name\", \"value\", \"unit\"}.\n";
            return 0;
        } else {
            std::cerr << "sandbox-bench: unknown argument " << a << "\n";
            return 2;
        }
    }
    ::signal(SIGPIPE, SIG_IGN);
    try {
        if (wanted("spawn_true_p50_us")) benchSpawn();
        if (wanted("sse_parse_mb_s")) benchSseParse();
        bool needAgent = wanted("agent_exec_true_p50_us") ||
                         wanted("agent_exec_sessionless_true_p50_us") ||
                         wanted("agent_stream_mb_s");
        if (needAgent) {
            Agent agent;
            if (wanted("agent_exec_true_p50_us"))
                benchExec(agent, "agent_exec_true_p50_us", R"({"command":"true"})");
            if (wanted("agent_exec_sessionless_true_p50_us"))
                benchExec(agent, "agent_exec_sessionless_true_p50_us",
                          R"({"command":"true","sessionId":"__DISABLE_SESSION__"})");
            if (wanted("agent_stream_mb_s")) benchStream(agent);
        }
        if (wanted("sandbox_create_p50_us") || wanted("bridge_exec_true_p50_us") ||
            wanted("bridge_file_roundtrip_32mib_mb_s"))
            benchDaemon();
        if (wanted("sdk_exec_true_p50_us") || wanted("sdk_stream_mb_s") ||
            wanted("sdk_file_roundtrip_32mib_mb_s"))
            benchSdk();
        if (wanted("pty_echo_roundtrip_p50_us")) benchPty();
    } catch (const std::exception& e) {
        std::cerr << "sandbox-bench: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
