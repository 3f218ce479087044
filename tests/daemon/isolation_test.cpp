// sandboxd --isolation bwrap: escape attempts from inside a sandbox, and the per-sandbox limits
// (fork bomb, memory bomb, output flood) against a neighbour that must keep answering.
// Skipped (with a message) where bubblewrap cannot create namespaces.
#include <sys/stat.h>

#include <algorithm>
#include <atomic>

#include "daemon/daemon_test_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;
using sandbox::SseEvent;
using sandbox::SseParser;

namespace {

#define SKIP_WITHOUT_BWRAP()                                                                \
    if (!bwrapAvailable()) {                                                                \
        MESSAGE("skipped: `bwrap --unshare-all --ro-bind / / true` fails on this machine"); \
        return;                                                                             \
    }

// Runs a shell script in the sandbox; returns the result (any exit code).
ExecResult shr(client::HttpConnection& c, const std::string& id, const std::string& script,
               json extra = json::object()) {
    auto r = run(c, id, {"sh", "-c", script}, std::move(extra));
    INFO(script);
    INFO(r.describe());
    CHECK(r.wellFormed());
    return r;
}

bool sandboxWorks(client::HttpConnection& c, const std::string& id) {
    auto r = run(c, id, {"echo", "ok"});
    return r.exitCode == 0 && r.out == "ok\n";
}

}  // namespace

TEST_SUITE("daemon.isolation") {
    TEST_CASE("escape: host files outside the allowed directories are not readable") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--isolation", "bwrap"});
        TempDir host;
        writeFile(host.path() + "/secret.txt", "host secret");
        std::string id = newSandbox(d.http);
        auto r = shr(d.http, id, "cat " + host.path() + "/secret.txt; echo rc=$?");
        CHECK(r.out.find("host secret") == std::string::npos);
        CHECK(r.out.find("rc=0") == std::string::npos);
        // The daemon's state directory (other workspaces, sockets) is not there either.
        auto st = shr(d.http, id, "ls " + d.stateDir() + " 2>&1; echo rc=$?");
        CHECK(st.out.find("rc=0") == std::string::npos);
        // Nor /root, /home, /var or the test binaries.
        auto dirs = shr(d.http, id,
                        "for p in /root /home /var /sys " + binPath("daemon_tests") +
                            "; do test -e $p && echo \"visible $p\"; done; true");
        CHECK(dirs.out.empty());
        // /proc/1/root is the sandbox's own root.
        auto pr =
            shr(d.http, id, "cat /proc/1/root" + host.path() + "/secret.txt 2>/dev/null; true");
        CHECK(pr.out.empty());
    }

    TEST_CASE("escape: no host processes are visible, none can be killed") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--isolation", "bwrap"});
        std::string id = newSandbox(d.http);
        std::string dpid = std::to_string(d.pid());
        auto ps = shr(d.http, id, "ps -eo pid=,comm=");
        INFO(ps.out);
        // Only the sandbox's own processes: bwrap (init), the agent, the agent's spare shell
        // (and the one this command took, until reaped), this shell and ps. A host's would be
        // dozens.
        std::set<std::string> comms;
        std::istringstream lines(ps.out);
        std::string pid, comm;
        int count = 0;
        while (lines >> pid >> comm) {
            comms.insert(comm);
            ++count;
        }
        CHECK(count <= 7);
        CHECK(comms.count("sandboxd") == 0);
        CHECK(comms.count("daemon_tests") == 0);
        auto proc = shr(d.http, id, "ls /proc | grep -c '^[0-9]'");
        CHECK(std::stoi(proc.out) <= 8);
        CHECK(shr(d.http, id, "grep -l sandboxd /proc/[0-9]*/comm 2>/dev/null; true").out.empty());
        // sandboxd's host pid does not exist in the sandbox; kill fails, and the daemon lives on.
        auto kill = shr(d.http, id, "kill -9 " + dpid + "; echo rc=$?; kill -9 -1; echo all=$?");
        CHECK(kill.out.find("rc=0") == std::string::npos);
        CHECK_FALSE(processGone(d.pid()));
        CHECK(call(d.http, "GET", "/health").status == 200);
        // `kill -9 -1` inside may take the sandbox down; the next request recreates it.
        auto still = run(d.http, id, {"echo", "still"});
        INFO(still.describe());
        INFO(d.log());
        CHECK(still.out == "still\n");
        // The sandbox has its own hostname and no capabilities.
        CHECK(shr(d.http, id, "hostname").out == "sandbox\n");
        CHECK(shr(d.http, id, "grep CapEff /proc/self/status").out ==
              "CapEff:\t0000000000000000\n");
    }

    TEST_CASE("escape: the network beyond loopback is unreachable (own net namespace)") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--isolation", "bwrap"});
        std::string id = newSandbox(d.http);
        // Only `lo` exists.
        auto ifs = shr(d.http, id, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
        CHECK(ifs.out == "lo\n");
        // The host's sandboxd port on 127.0.0.1 is not the host's loopback: refused.
        std::string port = std::to_string(d.server.port());
        auto conn = shr(d.http, id,
                        "python3 -c \"import socket\n"
                        "s=socket.socket(); s.settimeout(3)\n"
                        "try:\n  s.connect(('127.0.0.1'," +
                            port +
                            ")); print('connected')\n"
                            "except OSError as e: print('failed', e.errno)\"");
        CHECK(conn.out.find("failed") == 0);
        // No route to anything else (nothing is sent: there is no interface to send it on).
        auto route = shr(d.http, id,
                         "python3 -c \"import socket\n"
                         "s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                         "try:\n  s.connect(('192.0.2.1', 9)); print('routed')\n"
                         "except OSError as e: print('unreachable', e.errno)\"");
        CHECK(route.out.find("unreachable") == 0);
        // Loopback inside the sandbox works (a server and a client in the sandbox).
        auto lo = shr(d.http, id,
                      "python3 -c \"import socket\n"
                      "srv=socket.socket(); srv.bind(('127.0.0.1',0)); srv.listen(1)\n"
                      "c=socket.create_connection(srv.getsockname()); a,_=srv.accept()\n"
                      "c.sendall(b'ping'); print(a.recv(4).decode())\"");
        CHECK(lo.out == "ping\n");
    }

    TEST_CASE("escape: writing outside /workspace and /tmp fails") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--isolation", "bwrap"});
        std::string id = newSandbox(d.http);
        for (const auto* path :
             {"/usr/x", "/etc/x", "/usr/bin/x", "/opt/x", "/x", "/bin/x", "/run/sandbox-agent"}) {
            CAPTURE(path);
            auto r = shr(d.http, id, std::string("touch ") + path + " 2>/dev/null; echo rc=$?");
            CHECK(r.out != "rc=0\n");
        }
        // Remounting a read-only bind writable (needs capabilities) fails too; nothing is written.
        auto rm = shr(d.http, id, "mount -o remount,rw,bind /usr 2>/dev/null; echo rc=$?");
        CHECK(rm.out != "rc=0\n");
        auto um = shr(d.http, id, "umount /usr 2>/dev/null; echo rc=$?");
        CHECK(um.out != "rc=0\n");
        CHECK_FALSE(pathExists("/usr/x"));
        CHECK_FALSE(pathExists("/etc/x"));
        // /workspace and /tmp are writable; /tmp is private to the sandbox.
        CHECK(shr(d.http, id, "touch /workspace/ok /tmp/ok && echo ok").out == "ok\n");
        std::string marker = "sandboxd-test-tmp-" + id;
        shr(d.http, id, "touch /tmp/" + marker);
        CHECK_FALSE(pathExists("/tmp/" + marker));
    }

    TEST_CASE("escape: one sandbox cannot see another's workspace") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--isolation", "bwrap"});
        std::string a = newSandbox(d.http), b = newSandbox(d.http);
        shr(d.http, a, "echo secret-of-a > /workspace/a.txt; echo tmp-of-a > /tmp/a.txt");
        std::string aWs = d.workspace(a);
        auto r = shr(
            d.http, b,
            "ls -A /workspace; cat /workspace/a.txt /tmp/a.txt " + aWs +
                "/a.txt 2>/dev/null; find / -path /proc -prune -o -name a.txt -print 2>/dev/null; "
                "grep -rs secret-of-a /workspace /tmp /run /dev 2>/dev/null; true");
        CHECK(r.out.find("secret-of-a") == std::string::npos);
        CHECK(r.out.find("tmp-of-a") == std::string::npos);
        CHECK(r.out.find("a.txt") == std::string::npos);
        // Nor through the file API of b.
        CHECK(call(d.http, "GET", sandboxPath(b, "/file/workspace/a.txt")).status == 404);
        // a still has it.
        CHECK(shr(d.http, a, "cat /workspace/a.txt").out == "secret-of-a\n");
    }

    TEST_CASE("escape: a set-user-id file made in a sandbox cannot be reached from the host") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--isolation", "bwrap"});
        std::string a = newSandbox(d.http);
        // The sandbox owns its files and may mark one set-user-id. On the host it would belong
        // to the sandbox's own uid (never root), on a nosuid mount in sandboxd's own mount
        // namespace, behind directories that admit nobody but sandboxd and its sandboxes.
        auto r =
            shr(d.http, a,
                "cp /bin/true /workspace/t && chmod 4755 /workspace/t && stat -c %A /workspace/t");
        CHECK(r.exitCode == 0);
        struct stat file {};
        REQUIRE(::stat((d.workspace(a) + "/t").c_str(), &file) == 0);
        CHECK(file.st_uid != 0);
        CHECK((file.st_mode & 04000) != 0);
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + a + "/workspace/t"));  // host view
        std::string mounts = readFile("/proc/" + std::to_string(d.pid()) + "/mountinfo");
        auto at = mounts.find(" " + d.stateDir() + "/sandboxes/" + a + "/workspace ");
        REQUIRE(at != std::string::npos);
        std::string line = mounts.substr(at, mounts.find('\n', at) - at);
        INFO(line);
        CHECK(line.find("nosuid") != std::string::npos);
        for (const std::string& sub :
             std::vector<std::string>{"", "/sandboxes", "/pool", "/sandboxes/" + a}) {
            struct stat st {};
            REQUIRE(::stat((d.stateDir() + sub).c_str(), &st) == 0);
            INFO(sub << ": mode " << std::oct << (st.st_mode & 07777));
            CHECK(st.st_uid == 0);
            CHECK((st.st_mode & 07) == 0);                           // others: nothing
            if (::geteuid() == 0) CHECK((st.st_mode & 070) == 010);  // the sandboxes: pass only
        }
    }

    TEST_CASE("escape: a sandbox cannot redirect the daemon to another sandbox's agent") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--isolation", "bwrap"});
        std::string a = newSandbox(d.http), b = newSandbox(d.http);
        shr(d.http, a, "echo i-am-a > /workspace/who");
        shr(d.http, b, "echo i-am-b > /workspace/who");
        // The agent's socket is made by sandboxd in a directory no sandbox sees (the agent gets
        // it as a descriptor), so there is nothing inside to replace by a link to b's.
        std::string bSock = d.stateDir() + "/sandboxes/" + b + "/run/agent.sock";
        auto look = shr(d.http, a,
                        "ls -d /run/sandbox 2>&1; find / -xdev -type s 2>/dev/null | head; "
                        "ln -sf " +
                            bSock + " /run/agent.sock 2>&1; true");
        CHECK(look.out.find("No such file") != std::string::npos);
        const bool linked = look.out.find("Read-only") == std::string::npos;
        CHECK_FALSE(linked);
        // Requests for a must never run in b: either a's own agent answers (recreated), or they
        // fail.
        for (int i = 0; i < 3; ++i) {
            auto r = run(d.http, a, {"cat", "/workspace/who"});
            INFO(r.describe());
            CHECK(r.out.find("i-am-b") == std::string::npos);
            auto p = call(d.http, "POST", sandboxPath(a, "/agent/api/execute"),
                          json{{"command", "cat /workspace/who"}}.dump());
            INFO(p.raw);
            CHECK(p.raw.find("i-am-b") == std::string::npos);
        }
        CHECK(run(d.http, b, {"cat", "/workspace/who"}).out == "i-am-b\n");
        CHECK(waitFor([&] { return run(d.http, a, {"cat", "/workspace/who"}).out == "i-am-a\n"; }));
    }

    TEST_CASE(
        "limits: a fork bomb stays inside its sandbox's pids limit; the neighbour keeps "
        "answering") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({},
                        {"--isolation", "bwrap", "--memory-mb", "256", "--max-processes", "64"});
        std::string bomb = newSandbox(d.http), neighbour = newSandbox(d.http);
        CHECK(run(d.http, neighbour, {"echo", "warm"}).out == "warm\n");
        std::size_t neighbourProcs = sandboxProcesses(d.pid(), neighbour).size();

        // The classic bomb: its first shell returns at once and the forks go on in the background.
        ExecResult result;
        CHECK(finishesWithin(d, 60s, [&] {
            auto c = d.server.connect();
            result = exec(c, bomb,
                          json{{"argv", {"bash", "-c", ":(){ :|:& };:"}}, {"timeout_ms", 5000}});
        }));
        INFO(result.describe());
        CHECK(result.wellFormed());
        // It fills its sandbox up to the limit (64 processes, bwrap and the agent included) and no
        // further.
        std::size_t peak = 0;
        CHECK(waitFor(
            [&] {
                peak = std::max(peak, sandboxProcesses(d.pid(), bomb).size());
                return peak >= 56;
            },
            20s));
        // While it is at its limit, the neighbour answers promptly and can start processes.
        for (int i = 0; i < 5; ++i) {
            auto start = std::chrono::steady_clock::now();
            auto r = run(d.http, neighbour, {"sh", "-c", "echo alive | cat"});
            CHECK(r.out == "alive\n");
            CHECK(std::chrono::steady_clock::now() - start < 5s);
            peak = std::max(peak, sandboxProcesses(d.pid(), bomb).size());
        }
        CHECK(peak <= 64);
        CHECK(call(d.http, "GET", "/health").status == 200);
        // Destroying the sandbox ends the bomb; the id then gets a working sandbox again.
        CHECK(call(d.http, "DELETE", sandboxPath(bomb)).status == 204);
        CHECK(waitFor([&] { return sandboxProcesses(d.pid(), bomb).empty(); }));
        CHECK(sandboxProcesses(d.pid(), neighbour).size() == neighbourProcs);
        CHECK(run(d.http, bomb, {"echo", "fresh"}).out == "fresh\n");

        // A bomb whose shells wait for their children never returns: its timeout kills it all, and
        // the sandbox is usable again without being destroyed.
        ExecResult waiting;
        CHECK(finishesWithin(d, 60s, [&] {
            auto c = d.server.connect();
            waiting = exec(
                c, bomb, json{{"argv", {"bash", "-c", "f(){ f | f; }; f"}}, {"timeout_ms", 3000}});
        }));
        INFO(waiting.describe());
        CHECK(waiting.wellFormed());
        CHECK(waiting.exitCode == 124);
        CHECK(run(d.http, neighbour, {"echo", "alive"}).out == "alive\n");
        // Agent bug (reported): the kill on timeout stops escalating to SIGKILL once the group
        // leader is dead, and the bomb's shells block SIGTERM while they retry fork(), so some
        // may survive. Make this a CHECK once the agent kills the whole group.
        bool cleaned = waitFor(
            [&] {
                auto r = run(d.http, bomb, {"sh", "-c", "ls /proc | grep -c '^[0-9]'"});
                return r.exitCode == 0 && std::stoi(r.out.empty() ? "99" : r.out) <= 6;
            },
            5s);
        WARN_MESSAGE(cleaned, "processes of the timed-out fork bomb survived in its sandbox");
        // Whatever is left, it stays in its sandbox and goes with it.
        CHECK(call(d.http, "DELETE", sandboxPath(bomb)).status == 204);
        CHECK(waitFor([&] { return sandboxProcesses(d.pid(), bomb).empty(); }));
        CHECK(sandboxWorks(d.http, bomb));
    }

    TEST_CASE("limits: a memory bomb fails inside its sandbox; the neighbour keeps answering") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({},
                        {"--isolation", "bwrap", "--memory-mb", "256", "--max-processes", "64"});
        std::string bomb = newSandbox(d.http), neighbour = newSandbox(d.http);
        CHECK(sandboxWorks(d.http, bomb));
        auto agentBefore = agentPids(d.pid());
        // Touches every page of 4 GiB (a bytes object is filled, not lazily zero-mapped).
        auto r = run(d.http, bomb, {"python3", "-c", "x = b'a' * (4 << 30); print(len(x))"},
                     {{"timeout_ms", 60000}});
        INFO(r.describe());
        CHECK(r.status == 200);
        CHECK(r.terminals == 1);
        CHECK(r.out.empty());
        CHECK_FALSE(r.exitCode == 0);
        CHECK_FALSE(r.exitCode == 124);
        // A growing list too.
        auto list =
            run(d.http, bomb, {"python3", "-c", "l = []\nwhile True: l.append(' ' * 1048576)"},
                {{"timeout_ms", 60000}});
        CHECK(list.terminals == 1);
        CHECK_FALSE(list.exitCode == 0);
        CHECK_FALSE(list.exitCode == 124);
        CHECK(run(d.http, neighbour, {"echo", "alive"}).out == "alive\n");
        CHECK(run(d.http, bomb, {"echo", "recovered"}).out == "recovered\n");
        // Only the bomb died: the bomb sandbox's agent is the same process (the neighbour's new).
        auto agentAfter = agentPids(d.pid());
        for (pid_t p : agentBefore)
            CHECK(std::find(agentAfter.begin(), agentAfter.end(), p) != agentAfter.end());
        CHECK(call(d.http, "GET", "/health").status == 200);
    }

    TEST_CASE("limits: an output flood streams without breaking the daemon") {
        SKIP_WITHOUT_BWRAP();
#if defined(__SANITIZE_ADDRESS__)
        const char* memoryMb = "2048";  // an ASan-built agent needs room for its shadow memory
#else
        const char* memoryMb = "256";
#endif
        DaemonFixture d({},
                        {"--isolation", "bwrap", "--memory-mb", memoryMb, "--max-processes", "64"});
        std::string flood = newSandbox(d.http), neighbour = newSandbox(d.http);
        CHECK(run(d.http, neighbour, {"echo", "warm"}).out == "warm\n");
        const std::size_t total = 200u * 1024 * 1024;
        std::atomic<std::size_t> received{0};
        std::size_t ys = 0, other = 0;
        ExecResult result;
        std::thread t([&] {
            auto c = d.server.connect();
            result = exec(c, flood, json{{"argv", {"sh", "-c", "yes | head -c 200M"}}}, {},
                          [&](const Event& e, const ExecResult& r) {
                              if (e.name == "stdout") {
                                  // Count, then drop what was decoded (200 MiB is not kept).
                                  for (char ch : r.out) (ch == 'y' || ch == '\n' ? ys : other)++;
                                  received += r.out.size();
                                  const_cast<ExecResult&>(r).out.clear();
                              }
                              return true;
                          });
        });
        // During the flood the daemon and the neighbour answer.
        CHECK(waitFor([&] { return received.load() > 0; }, 30s));
        auto h = d.server.connect();
        CHECK(call(h, "GET", "/health").status == 200);
        auto n = run(h, neighbour, {"echo", "alive"});
        CHECK(n.out == "alive\n");
        t.join();
        INFO(result.describe());
        CHECK(result.wellFormed());
        CHECK(result.exitCode == 0);
        CHECK(received.load() == total);
        CHECK(ys + other == total);
        CHECK(other == 0);
        CHECK(call(d.http, "GET", "/health").status == 200);
        CHECK(run(d.http, flood, {"echo", "after"}).out == "after\n");
    }

}  // TEST_SUITE
