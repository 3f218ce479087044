// sandboxd under faults: the agent killed (idle and mid-stream), clients that hang up, destroy
// during a command, shutdown, and many create/exec/destroy cycles without leaks.
#include <signal.h>

#include <atomic>
#include <memory>
#include <sstream>

#include "daemon/daemon_test_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;
using sandbox::SseEvent;
using sandbox::SseParser;

namespace {

/// Host pids of the sandbox-agent of one sandbox.
std::vector<pid_t> agentOf(const DaemonFixture& d, const std::string& id) {
    return agentsAmong(sandboxProcesses(d.pid(), id));
}

/// A raw TCP connection to 127.0.0.1:port that has sent `request` and read the response head.
int openRaw(int port, const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{30, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
            static_cast<ssize_t>(request.size())) {
        ::close(fd);
        return -1;
    }
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd, &c, 1, 0) == 1)
        head.push_back(c);
    if (head.rfind("HTTP/1.1 200", 0) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

bool sandboxWorks(client::HttpConnection& c, const std::string& id) {
    auto r = run(c, id, {"echo", "ok"});
    return r.exitCode == 0 && r.out == "ok\n";
}

}  // namespace

TEST_SUITE("daemon.faults") {
    TEST_CASE(
        "the agent killed while idle: the next request recreates the sandbox, files survive") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        REQUIRE(call(d.http, "PUT", sandboxPath(id, "/file/workspace/keep.txt"), "kept").status ==
                200);
        auto agents = agentOf(d, id);
        REQUIRE(agents.size() == 1);
        REQUIRE(::kill(agents[0], SIGKILL) == 0);
        // The whole sandbox goes with its agent (bubblewrap's init follows it).
        CHECK(waitFor([&] { return sandboxProcesses(d.pid(), id).empty(); }));
        auto r = run(d.http, id, {"cat", "/workspace/keep.txt"});
        INFO(r.describe());
        CHECK(r.out == "kept");
        CHECK(r.exitCode == 0);
        auto now = agentOf(d, id);
        REQUIRE(now.size() == 1);
        CHECK(now[0] != agents[0]);
        CHECK(call(d.http, "GET", sandboxPath(id, "/running")).raw == R"({"running":true})");
    }

    TEST_CASE(
        "the agent dead while its launcher lives on: the request is served by a fresh agent") {
        // The window between an agent's death and its launcher's exit, held open: the launcher
        // is stopped. A request in that window meets a refused connection; it must be served,
        // not answered with the dead agent's error.
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        REQUIRE(call(d.http, "PUT", sandboxPath(id, "/file/workspace/keep.txt"), "kept").status ==
                200);
        auto procs = sandboxProcesses(d.pid(), id);
        auto agents = agentsAmong(procs);
        REQUIRE(agents.size() == 1);
        pid_t launcher = 0;
        for (const auto& p : procs)
            if (p.ppid == d.pid()) launcher = p.pid;
        REQUIRE(launcher > 0);
        REQUIRE(launcher != agents[0]);  // bubblewrap's launcher
        REQUIRE(::kill(launcher, SIGSTOP) == 0);
        REQUIRE(::kill(agents[0], SIGKILL) == 0);
        CHECK(waitFor([&] { return processGone(agents[0]); }));

        for (std::string what : {"exec", "passthrough", "running"}) {
            INFO(what);
            if (what == "exec") {
                auto r = run(d.http, id, {"cat", "/workspace/keep.txt"});
                INFO(r.describe());
                CHECK(r.out == "kept");
                CHECK(r.exitCode == 0);
            } else if (what == "passthrough") {
                auto r = call(d.http, "POST", sandboxPath(id, "/agent/api/execute"),
                              R"({"command":"cat /workspace/keep.txt"})");
                CHECK(r.status == 200);
                CHECK(r.raw.find(R"("stdout":"kept")") != std::string::npos);
            } else {
                CHECK(call(d.http, "GET", sandboxPath(id, "/running")).raw ==
                      R"({"running":true})");
            }
            // The next case: the fresh agent killed too, its launcher held.
            auto now = sandboxProcesses(d.pid(), id);
            auto fresh = agentsAmong(now);
            REQUIRE(fresh.size() == 1);
            CHECK(fresh[0] != agents[0]);
            for (const auto& p : now)
                if (p.ppid == d.pid()) REQUIRE(::kill(p.pid, SIGSTOP) == 0);
            REQUIRE(::kill(fresh[0], SIGKILL) == 0);
            CHECK(waitFor([&] { return processGone(fresh[0]); }));
            agents = fresh;
        }
        // The stopped launchers are killed with their launches (no process outlives them).
        CHECK(call(d.http, "DELETE", sandboxPath(id, "")).status == 204);
        CHECK(waitFor([&] { return sandboxProcesses(d.pid(), id).empty(); }));
    }

    TEST_CASE("the agent killed mid-stream: an SSE error event, not a hang; the next exec works") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        REQUIRE(call(d.http, "PUT", sandboxPath(id, "/file/workspace/keep.txt"), "kept").status ==
                200);
        auto check = [&](const ExecResult& r) {
            INFO(r.describe());
            CHECK(r.wellFormed());
            REQUIRE(!r.events.empty());
            CHECK(r.events.front().name == "stdout");
            CHECK(r.out == "started\n");
            CHECK(r.events.back().name == "error");
            CHECK(r.error.value("code", "") == "exec_transport_error");
            CHECK(r.error.value("error", "").rfind("exec failed: ", 0) == 0);
            // The very next request works, on a recreated sandbox with the workspace intact.
            auto next = run(d.http, id, {"cat", "/workspace/keep.txt"});
            INFO(next.describe());
            CHECK(next.out == "kept");
            CHECK(next.exitCode == 0);
        };

        // (The command itself cannot kill its agent: the escape suite checks that.)
        {
            ExecResult r;
            pid_t killed = 0;
            CHECK(finishesWithin(d, 30s, [&] {
                auto c = d.server.connect();
                r = exec(c, id, json{{"argv", {"sh", "-c", "echo started; exec sleep 1000"}}}, {},
                         [&](const Event& e, const ExecResult&) {
                             if (e.name == "stdout" && !killed) {
                                 auto agents = agentOf(d, id);
                                 if (agents.size() == 1 && ::kill(agents[0], SIGKILL) == 0)
                                     killed = agents[0];
                             }
                             return true;
                         });
            }));
            CHECK(killed > 0);
            check(r);
        }
    }

    TEST_CASE(
        "the agent killed during a passthrough stream: the stream ends, the next call works") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        std::string raw;
        bool threw = false;
        pid_t killed = 0;
        CHECK(finishesWithin(d, 30s, [&] {
            auto c = d.server.connect();
            try {
                c.stream("POST", sandboxPath(id, "/agent/api/execute/stream"),
                         json{{"command", "echo started; exec sleep 1000"}}.dump(), {},
                         [&](std::string_view chunk) {
                             raw.append(chunk);
                             // Killed from the host (nothing inside can kill it) once it runs.
                             if (!killed && raw.find("started") != std::string::npos) {
                                 auto agents = agentOf(d, id);
                                 if (agents.size() == 1 && ::kill(agents[0], SIGKILL) == 0)
                                     killed = agents[0];
                             }
                             return true;
                         });
            } catch (const std::exception&) {
                threw = true;  // a truncated body is a fine way to end it
            }
        }));
        INFO(raw);
        CHECK(killed > 0);
        CHECK(raw.find("started") != std::string::npos);
        CHECK(raw.find("\"complete\"") == std::string::npos);
        (void)threw;
        CHECK(call(d.http, "GET", sandboxPath(id, "/agent/api/ping")).status == 200);
        CHECK(sandboxWorks(d.http, id));
    }

    TEST_CASE("a client that hangs up mid-exec takes its command with it") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        auto c = d.server.connect();
        auto r = exec(
            c, id,
            json{{"argv", {"sh", "-c", "echo $$ > /workspace/pid; echo started; exec sleep 1000"}}},
            {}, [](const Event& e, const ExecResult&) { return e.name != "stdout"; });
        CHECK(r.out == "started\n");
        CHECK(r.terminals == 0);
        std::string pid = sh(d.http, id, "cat /workspace/pid");
        REQUIRE(pid.size() > 1);
        pid.pop_back();
        CHECK(waitFor([&] {
            return sh(d.http, id, "test -d /proc/" + pid + " && echo alive || echo gone") ==
                   "gone\n";
        }));
        CHECK(waitFor([&] {
            for (const auto& p : descendants(d.pid()))
                if (p.comm == "sleep") return false;
            return true;
        }));
        // A quiet command (no output at all): the daemon notices the hang-up without writing.
        std::string body =
            json{{"argv", {"sh", "-c", "echo $$ > /workspace/pid2; exec sleep 1000"}}}.dump();
        int fd = openRaw(d.server.port(), "POST " + sandboxPath(id, "/exec") +
                                              " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                                              std::to_string(body.size()) + "\r\n\r\n" + body);
        REQUIRE(fd >= 0);
        std::string pidFile = d.workspace(id) + "/pid2";
        std::string pid2;
        CHECK(waitFor([&] {
            pid2 = readFile(pidFile);
            return pid2.size() > 1 && pid2.back() == '\n';
        }));
        pid2.pop_back();
        ::close(fd);
        CHECK(waitFor([&] {
            return sh(d.http, id, "test -d /proc/" + pid2 + " && echo alive || echo gone") ==
                   "gone\n";
        }));
    }

    TEST_CASE("destroy during a running command ends its stream with a terminal event") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        std::atomic<bool> started{false};
        ExecResult r;
        std::thread t;
        bool finished = finishesWithin(d, 30s, [&] {
            std::thread inner([&] {
                auto c = d.server.connect();
                r = exec(c, id, json{{"argv", {"sh", "-c", "echo started; exec sleep 1000"}}}, {},
                         [&](const Event& e, const ExecResult&) {
                             if (e.name == "stdout") started = true;
                             return true;
                         });
            });
            bool ok = waitFor([&] { return started.load(); }, 20s);
            if (ok) {
                auto c = d.server.connect();
                auto del = call(c, "DELETE", sandboxPath(id));
                CHECK(del.status == 204);
            }
            inner.join();
        });
        CHECK(finished);
        INFO(r.describe());
        CHECK(r.wellFormed());
        CHECK(r.events.back().name == "error");
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + id));
        CHECK(waitFor([&] { return descendants(d.pid()).empty(); }));
        // The id is usable again.
        CHECK(sandboxWorks(d.http, id));
    }

    TEST_CASE(
        "destroying one sandbox leaves the daemon idle (no busy loop) and the others running") {
        DaemonFixture d;
        std::string a = newSandbox(d.http), b = newSandbox(d.http), c = newSandbox(d.http);
        for (const auto& id : {a, b, c}) CHECK(sandboxWorks(d.http, id));
        CHECK(call(d.http, "DELETE", sandboxPath(a)).status == 204);
        CHECK(call(d.http, "DELETE", sandboxPath(b)).status == 204);
        // Over at least half a second of mostly idle time (the daemon waits on c's commands), the
        // daemon must not burn a CPU.
        long before = cpuTicks(d.pid());
        auto start = std::chrono::steady_clock::now();
        while (std::chrono::steady_clock::now() - start < 600ms)
            CHECK(run(d.http, c, {"sleep", "0.1"}).exitCode == 0);
        double wallTicks =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() *
            static_cast<double>(::sysconf(_SC_CLK_TCK));
        long used = cpuTicks(d.pid()) - before;
        INFO("daemon used " << used << " ticks in " << wallTicks << " ticks of wall time");
        CHECK(static_cast<double>(used) < 0.5 * wallTicks);
        CHECK(sandboxWorks(d.http, c));
    }

    TEST_CASE("a finished exec or passthrough releases its agent connection at once") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        CHECK(sandboxWorks(d.http, id));
        // Our keep-alive connection stays open: the listener, it, and nothing else.
        CHECK(waitFor([&] { return socketCount(d.pid()) == 2; }, 2s));
        auto r = call(d.http, "POST", sandboxPath(id, "/agent/api/execute/stream"),
                      json{{"command", "true"}}.dump());
        CHECK(r.status == 200);
        CHECK(waitFor([&] { return socketCount(d.pid()) == 2; }, 2s));
    }

    // Every finished command releases its pipes and pidfd, so a sandbox keeps running commands
    // however many it has run under a small open-files limit.
    TEST_CASE("many execs on one sandbox keep working under its open-files limit") {
        DaemonFixture d({}, {"--max-open-files", "512"});
        std::string id = newSandbox(d.http);
        int ok = 0;
        std::string firstFailure;
        for (int i = 0; i < 250; ++i) {
            auto r = run(d.http, id, {"echo", "x"});
            if (r.exitCode == 0 && r.out == "x\n")
                ++ok;
            else if (firstFailure.empty())
                firstFailure = "exec " + std::to_string(i) + ": " + r.describe();
        }
        INFO(firstFailure);
        CHECK(ok == 250);
        // Counted from the host: inside, the agent's descriptors are nobody's to see.
        auto agents = agentOf(d, id);
        REQUIRE(agents.size() == 1);
        const int fds = fdCount(agents[0]);
        INFO("the agent has " << fds << " descriptors open");
        CHECK(fds > 0);
        CHECK(fds < 100);
    }

    TEST_CASE("SIGTERM: the daemon destroys every sandbox on its way out") {
        DaemonFixture d;
        std::string a = newSandbox(d.http), b = newSandbox(d.http);
        CHECK(sandboxWorks(d.http, a));
        CHECK(sandboxWorks(d.http, b));
        auto procs = descendants(d.pid());
        CHECK(procs.size() >= 2);
        REQUIRE(::kill(d.pid(), SIGTERM) == 0);
        CHECK(waitFor([&] { return processGone(d.pid()); }));
        for (const auto& p : procs) CHECK(waitFor([&] { return processGone(p.pid); }));
        CHECK(daemonCgroups(d.pid()).empty());
        CHECK_FALSE(daemonCgroupExists(d.pid()));
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + a));
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + b));
    }

    TEST_CASE("code contexts run inside the sandbox and end with it") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        std::vector<std::string> contexts;
        for (const char* language : {"python", "javascript"}) {
            auto c = call(d.http, "POST", sandboxPath(id, "/agent/api/contexts"),
                          json{{"language", language}}.dump());
            INFO(c.raw);
            REQUIRE(c.status == 200);
            contexts.push_back(c.body["contextId"]);
        }
        // Each interpreter is a process of the sandbox (under its launcher), not of the host.
        auto procs = sandboxProcesses(d.pid(), id);
        int interpreters = 0;
        for (const auto& p : procs)
            if (p.comm.rfind("python", 0) == 0 || p.comm == "node") ++interpreters;
        CHECK(interpreters >= 2);
        auto r = call(d.http, "POST", sandboxPath(id, "/agent/api/execute/code"),
                      json{{"context_id", contexts[0]}, {"code", "import os; os.getuid()"}}.dump());
        CHECK(r.raw.find(R"("type":"result")") != std::string::npos);
        REQUIRE(call(d.http, "DELETE", sandboxPath(id, "")).status == 204);
        CHECK(waitFor([&] { return sandboxProcesses(d.pid(), id).empty(); }));
    }

    TEST_CASE("200 create/exec/destroy cycles leak no processes, fds, mounts or cgroups") {
        DaemonFixture d;
        // Warm up (first-use allocations), then take the baseline with the daemon idle: no
        // sandbox, and no socket but its listener (our keep-alive connection closed).
        for (int i = 0; i < 3; ++i) {
            std::string id = newSandbox(d.http);
            CHECK(sandboxWorks(d.http, id));
            CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
        }
        CHECK(waitFor([&] { return descendants(d.pid()).empty(); }));
        d.http.close();
        CHECK(waitFor([&] { return socketCount(d.pid()) == 1; }));
        int fds = fdCount(d.pid());
        std::string mounts = daemonMounts(d.pid());
        auto start = std::chrono::steady_clock::now();
        int ok = 0;
        for (int i = 0; i < 200; ++i) {
            std::string id = newSandbox(d.http);
            auto r = run(d.http, id, {"sh", "-c", "echo cycle > /workspace/f; cat /workspace/f"});
            if (r.exitCode == 0 && r.out == "cycle\n") ++ok;
            auto del = call(d.http, "DELETE", sandboxPath(id));
            if (del.status != 204) FAIL_CHECK("DELETE " << id << " gave " << del.status);
        }
        auto took = std::chrono::steady_clock::now() - start;
        MESSAGE("200 cycles took "
                << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
        CHECK(ok == 200);
        CHECK(took < 90s);
        CHECK(waitFor([&] { return descendants(d.pid()).empty(); }));
        d.http.close();
        CHECK(waitFor([&] { return socketCount(d.pid()) == 1 && fdCount(d.pid()) == fds; }));
        INFO("fds before " << fds << ", after " << fdCount(d.pid()));
        CHECK(fdCount(d.pid()) == fds);
        CHECK(daemonMounts(d.pid()) == mounts);
        CHECK(daemonMounts(d.pid()).find(d.stateDir()) == std::string::npos);
        CHECK(daemonCgroups(d.pid()).empty());
        std::error_code ec;
        CHECK(std::filesystem::is_empty(d.stateDir() + "/sandboxes", ec));
        CHECK(call(d.http, "GET", "/health").status == 200);
    }

}  // TEST_SUITE
