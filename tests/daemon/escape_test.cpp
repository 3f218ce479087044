// The escape suite: attacks a sandbox's own code would try against the host, each one expected
// to fail. Every case here was run against the sandboxd before per-sandbox identities, seccomp
// and the agent-as-init (SANDBOX_TEST_BIN_DIR pointing at that build) and failed there; see
// docs/security.md for the list and what each result means. Probes that would change the host
// if they succeeded write back the value they read (a sysctl), or detach at once (ptrace).
//
// Skipped (with a message) where bubblewrap cannot isolate; the identity checks need root.
#include <linux/keyctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <map>
#include <sstream>

#include "daemon/daemon_test_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;

namespace {

#define SKIP_WITHOUT_BWRAP()                                                                \
    if (!bwrapAvailable()) {                                                                \
        MESSAGE("skipped: `bwrap --unshare-all --ro-bind / / true` fails on this machine"); \
        return;                                                                             \
    }

ExecResult shr(client::HttpConnection& c, const std::string& id, const std::string& script) {
    auto r = run(c, id, {"sh", "-c", script});
    INFO(script);
    INFO(r.describe());
    CHECK(r.wellFormed());
    return r;
}

// The sandbox-try-syscall helper, copied into the sandbox's workspace: name -> result.
std::map<std::string, std::string> trySyscalls(DaemonFixture& d, const std::string& id) {
    std::string helper = readFile(binPath("sandbox-try-syscall"));
    REQUIRE(helper.size() > 1000);
    auto put = call(d.http, "PUT", sandboxPath(id, "/file/workspace/try-syscall"), helper);
    REQUIRE_MESSAGE(put.status == 200, put.raw);
    auto r = shr(d.http, id, "chmod +x /workspace/try-syscall && /workspace/try-syscall");
    REQUIRE(r.exitCode == 0);
    std::map<std::string, std::string> out;
    std::istringstream lines(r.out);
    std::string name, result;
    while (lines >> name >> result) out[name] = result;
    return out;
}

// Where the daemon keeps a sandbox's cgroup (v1 cpu hierarchy, or v2), "" when there is none.
std::string cpuGroupOf(pid_t daemon, const std::string& id) {
    for (const auto& dir : daemonCgroups(daemon)) {
        std::string name = std::filesystem::path(dir).filename().string();
        if (name.rfind(id + ".", 0) == 0 &&
            (pathExists(dir + "/cpu.cfs_quota_us") || pathExists(dir + "/cpu.max")))
            return dir;
    }
    return {};
}

}  // namespace

TEST_SUITE("daemon.escape") {
    TEST_CASE("escape: a sandbox's root is not the host's root; its files are its own uid's") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d;
        std::string a = newSandbox(d.http), b = newSandbox(d.http);
        auto map = shr(d.http, a, "cat /proc/self/uid_map /proc/self/gid_map; id -u");
        std::istringstream in(map.out);
        long inside = -1, outside = -1, count = -1, ginside = -1, goutside = -1, gcount = -1;
        in >> inside >> outside >> count >> ginside >> goutside >> gcount;
        CHECK(inside == 0);  // the sandbox still sees itself as root, as the reference's does
        CHECK(count == 1);   // and nothing else of the host is mapped
        CHECK(outside != 0);
        CHECK(goutside != 0);
        if (::geteuid() == 0) {
            // Its own id from sandboxd's range (not sandboxd's, not any account's), and another
            // sandbox gets another.
            CHECK(outside >= 0x70000001);
            auto other = shr(d.http, b, "cat /proc/self/uid_map");
            std::istringstream oin(other.out);
            long o0 = -1, o1 = -1;
            oin >> o0 >> o1;
            CHECK(o1 != outside);
            CHECK(o1 >= 0x70000001);
        }
        // What it writes is that identity's on the host, whoever writes it: a command, or the
        // file API and /hydrate (sandboxd writes those on its behalf).
        shr(d.http, a, "echo x > /workspace/by-command; mkdir -p /workspace/dir/sub");
        REQUIRE(call(d.http, "PUT", sandboxPath(a, "/file/workspace/new/by-api"), "y").status ==
                200);
        for (const char* f : {"/by-command", "/dir/sub", "/new", "/new/by-api"}) {
            struct stat st {};
            REQUIRE(::stat((d.workspace(a) + f).c_str(), &st) == 0);
            CAPTURE(f);
            CHECK(st.st_uid == static_cast<uid_t>(outside));
            CHECK(st.st_gid == static_cast<gid_t>(goutside));
        }
        // ... so the sandbox can change what the file API wrote for it.
        CHECK(shr(d.http, a, "echo z >> /workspace/new/by-api && rm -r /workspace/new && echo ok")
                  .out == "ok\n");
    }

    TEST_CASE("escape: root-only host files stay unreadable, by exec and by the agent's routes") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        auto r = shr(d.http, id,
                     "for f in /etc/shadow /etc/gshadow /proc/kpageflags /proc/slabinfo "
                     "/proc/kcore /proc/1/environ; do head -c1 $f >/dev/null 2>&1 && echo READ $f; "
                     "done; true");
        CHECK(r.out == "");
        // The agent runs as the sandbox's identity too: its file routes cannot read them either.
        for (const char* path : {"/etc/shadow", "/proc/slabinfo"}) {
            auto read = call(d.http, "POST", sandboxPath(id, "/agent/api/read"),
                             json{{"path", path}}.dump());
            INFO(path << ": " << read.raw);
            CHECK(read.status != 200);
            CHECK(read.raw.find("root:") == std::string::npos);
        }
    }

    TEST_CASE("escape: the kernel's tunables and triggers are not writable") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        // Each write puts back the value it read: on a sandbox where it succeeded, the host
        // would be unchanged, and the test would still fail.
        auto r =
            shr(d.http, id,
                "v=$(cat /proc/sys/fs/lease-break-time); "
                "(echo \"$v\" > /proc/sys/fs/lease-break-time) 2>/dev/null && echo WROTE lease; "
                "p=$(cat /proc/sys/kernel/core_pattern); "
                "(printf '%s\\n' \"$p\" > /proc/sys/kernel/core_pattern) 2>/dev/null && "
                "echo WROTE core_pattern; "
                "for f in /proc/sysrq-trigger /proc/sys/vm/drop_caches "
                "/proc/sys/kernel/hostname /proc/sys/net/core/somaxconn; do "
                "test -w $f && echo WRITABLE $f; done; "
                "test -e /sys && echo HAS /sys; "
                "touch /proc/x /usr/x /etc/x / 2>/dev/null && echo WROTE root; true");
        CHECK(r.out == "");
    }

    TEST_CASE("escape: the host's kernel keys are out of reach (/proc/keys, keyctl)") {
        SKIP_WITHOUT_BWRAP();
        // A key in the session keyring of this test process, which sandboxd inherits.
        const std::string desc = "sandbox-escape-probe-" + std::to_string(::getpid());
        long key =
            ::syscall(SYS_add_key, "user", desc.c_str(), "secret", 6, KEY_SPEC_SESSION_KEYRING);
        if (key < 0) {
            MESSAGE("skipped: this process has no session keyring to put a key in");
            return;
        }
        struct Revoke {
            long key;
            ~Revoke() { ::syscall(SYS_keyctl, KEYCTL_REVOKE, key); }
        } revoke{key};
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        auto r = shr(d.http, id, "cat /proc/keys; true");
        CHECK(r.out.find(desc) == std::string::npos);
        auto calls = trySyscalls(d, id);
        CHECK(calls["keyctl"] == "EPERM");
        CHECK(calls["add_key"] == "EPERM");
        CHECK(calls["request_key"] == "EPERM");
    }

    TEST_CASE("escape: dangerous system calls fail with EPERM (seccomp); ordinary ones work") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        auto calls = trySyscalls(d, id);
        INFO(shr(d.http, id, "/workspace/try-syscall").out);
        for (const char* name : {"keyctl",
                                 "add_key",
                                 "request_key",
                                 "bpf",
                                 "perf_event_open",
                                 "userfaultfd",
                                 "io_uring_setup",
                                 "kexec_load",
                                 "kexec_file_load",
                                 "init_module",
                                 "finit_module",
                                 "delete_module",
                                 "reboot",
                                 "swapon",
                                 "swapoff",
                                 "clock_settime",
                                 "settimeofday",
                                 "syslog",
                                 "acct",
                                 "quotactl",
                                 "iopl",
                                 "ioperm",
                                 "open_by_handle_at",
                                 "name_to_handle_at",
                                 "mount",
                                 "umount2",
                                 "pivot_root",
                                 "chroot",
                                 "fsopen",
                                 "open_tree",
                                 "move_mount",
                                 "setns",
                                 "unshare_user",
                                 "unshare_net",
                                 "unshare_mount",
                                 "clone_newuser",
                                 "kcmp",
                                 "fanotify_init",
                                 "tiocsti",
                                 "tiocsti_high_bits",
                                 "tioclinux"}) {
            CAPTURE(name);
            CHECK(calls[name] == "EPERM");
        }
        // clone3 hides its flags from the filter: refused as unknown, libc falls back to clone.
        CHECK(calls["clone3"] == "ENOSYS");
        CHECK(calls["personality_bsd"] == "ENOSYS");
        for (const char* name :
             {"getpid", "fork", "unshare_files", "personality_query", "tcgetattr"}) {
            CAPTURE(name);
            CHECK(calls[name] == "OK");
        }
        // And through a real tool: no nested user namespace, no new network.
        auto r =
            shr(d.http, id, "unshare -U true 2>&1; echo rc=$?; unshare -n true 2>&1; echo rc=$?");
        CHECK(r.out.find("rc=0") == std::string::npos);
    }

    TEST_CASE("escape: the agent cannot be stopped, killed or traced from inside") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        auto calls = trySyscalls(d, id);  // (starts the sandbox)
        auto agents = agentPids(d.pid());
        REQUIRE(agents.size() == 1);
        CHECK(calls["ptrace_agent"] == "EPERM");
        CHECK(calls["process_vm_readv_agent"] == "EPERM");
        CHECK((calls["proc_mem_agent"] == "EACCES" || calls["proc_mem_agent"] == "EPERM"));
        CHECK(calls["pidfd_getfd_agent"] == "EPERM");
        // A session that exists before the storm.
        CHECK(call(d.http, "POST", sandboxPath(id, "/agent/api/execute"),
                   json{{"command", "echo before"}, {"sessionId", "s0"}}.dump())
                  .body.value("stdout", "") == "before");
        // Every signal a process may send, to the agent by pid and to everything at once.
        shr(d.http, id,
            "for s in STOP TSTP TTIN TTOU TERM INT HUP QUIT USR1 KILL; do kill -$s 1; "
            "for p in $(pgrep -x sandbox-agent); do kill -$s $p; done; done 2>/dev/null; "
            "kill -STOP -1; true");
        // Still the same agent, not stopped, and a command with no timeout still completes.
        CHECK(agentPids(d.pid()) == agents);
        std::string state = readFile("/proc/" + std::to_string(agents[0]) + "/stat");
        CHECK(state.substr(state.rfind(')') + 2, 1) != "T");
        ExecResult r;
        CHECK(finishesWithin(d, 30s, [&] {
            auto c = d.server.connect();
            r = run(c, id, {"echo", "alive"});
        }));
        CHECK(r.out == "alive\n");
        for (std::string session : {"s0", "s1"}) {
            CAPTURE(session);
            Reply in;
            CHECK(finishesWithin(d, 30s, [&] {
                auto c = d.server.connect();
                in = call(c, "POST", sandboxPath(id, "/agent/api/execute"),
                          json{{"command", "echo in-a-session"}, {"sessionId", session}}.dump());
            }));
            CHECK(in.body.value("stdout", "") == "in-a-session");
        }
    }

    TEST_CASE("limits: the workspace and /tmp are size-capped file systems") {
        SKIP_WITHOUT_BWRAP();
        if (::geteuid() != 0) {
            MESSAGE("skipped: workspace size limits need sandboxd to run as root");
            return;
        }
        DaemonFixture d({}, {"--disk-mb", "64", "--tmp-mb", "32"});
        std::string id = newSandbox(d.http);
        auto sizes = shr(d.http, id, "df -k --output=size /workspace /tmp | tail -n 2 | tr -d ' '");
        CHECK(sizes.out == std::to_string(64 * 1024) + "\n" + std::to_string(32 * 1024) + "\n");
        // Ten files of 10 MiB: the sixth or seventh fails, and nothing reaches the host's disk.
        auto fill = shr(d.http, id,
                        "for i in 1 2 3 4 5 6 7 8 9 10; do head -c 10M /dev/zero > /workspace/f$i "
                        "|| { echo full at $i; break; }; done 2>&1; du -sm /workspace | cut -f1");
        CHECK(fill.out.find("No space left on device") != std::string::npos);
        CHECK(fill.out.find("full at") != std::string::npos);
        auto tmp = shr(d.http, id, "head -c 40M /dev/zero > /tmp/big; echo rc=$?");
        CHECK(tmp.out.find("rc=1") != std::string::npos);
        // The workspace lives in sandboxd's own mount namespace, not on the host's disk.
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + id + "/workspace/f1"));
        CHECK(pathExists(d.workspace(id) + "/f1"));
        // Freed space can be used again.
        CHECK(shr(d.http, id, "rm /workspace/f*; head -c 10M /dev/zero > /workspace/g; echo $?")
                  .out == "0\n");
    }

    TEST_CASE("limits: a sandbox gets its CPU share and no more") {
        SKIP_WITHOUT_BWRAP();
        DaemonFixture d({}, {"--cpus", "0.2"});
        auto health = call(d.http, "GET", "/health");
        if (health.body["isolation"]["cgroups"].get<std::string>().rfind("none", 0) == 0) {
            MESSAGE("skipped: no usable cgroups here");
            return;
        }
        std::string id = newSandbox(d.http);
        shr(d.http, id, "true");  // started on first use
        std::string group = cpuGroupOf(d.pid(), id);
        REQUIRE_FALSE(group.empty());
        if (pathExists(group + "/cpu.cfs_quota_us")) {
            CHECK(readFile(group + "/cpu.cfs_quota_us") == "20000\n");
            CHECK(readFile(group + "/cpu.cfs_period_us") == "100000\n");
        } else {
            CHECK(readFile(group + "/cpu.max") == "20000 100000\n");
        }
        // Half a second of spinning at 0.2 CPU: the scheduler holds it back (throttled periods
        // are counted, not timed).
        shr(d.http, id, "timeout 0.5 sh -c 'while :; do :; done'; true");
        std::string stat = readFile(group + "/cpu.stat");
        auto at = stat.find("nr_throttled ");
        REQUIRE(at != std::string::npos);
        CHECK(std::atol(stat.c_str() + at + 13) > 0);
    }

    TEST_CASE("daemon: a SIGKILLed sandboxd leaves nothing running, and its successor cleans up") {
        SKIP_WITHOUT_BWRAP();
        TempDir dir;
        const std::string state = dir.path() + "/state";
        pid_t first = 0;
        std::vector<ProcInfo> procs;
        {
            ServerProcess s(binPath("sandboxd"), {"--state-dir", state}, {"SANDBOX_API_KEY="});
            first = s.pid();
            auto c = s.connect();
            std::string a = newSandbox(c), b = newSandbox(c);
            shr(c, a, "echo a > /workspace/x");
            shr(c, b, "sleep 1000 & echo started");
            procs = descendants(first);
            REQUIRE(procs.size() >= 2);
            CHECK_FALSE(daemonCgroups(first).empty());
            s.kill();  // SIGKILL: no chance to clean up
        }
        // Its sandboxes die with it (they are tied to its life).
        for (const auto& p : procs) CHECK(waitFor([&] { return processGone(p.pid); }));
        // Its mounts lived in its own mount namespace: gone with it.
        CHECK(readFile("/proc/self/mountinfo").find(state) == std::string::npos);
        const bool hadGroups = daemonCgroupExists(first);
        // The next sandboxd on the same state directory removes what is left.
        ServerProcess next(binPath("sandboxd"), {"--state-dir", state}, {"SANDBOX_API_KEY="});
        CHECK_FALSE(daemonCgroupExists(first));
        if (!hadGroups) MESSAGE("no cgroups on this host: only the state directory was checked");
        std::error_code ec;
        CHECK(std::filesystem::is_empty(state + "/sandboxes", ec));
        auto c = next.connect();
        CHECK(call(c, "GET", "/health").status == 200);
    }

    TEST_CASE(
        "never unisolated by accident: without working bubblewrap sandboxd refuses to start") {
        SKIP_WITHOUT_BWRAP();
        if (::geteuid() != 0) {
            MESSAGE("skipped: needs root to hide bubblewrap in a mount namespace of its own");
            return;
        }
        // sandboxd in a mount namespace of its own where /usr/bin/bwrap always fails (unshare
        // and sh exec it, so the pid is sandboxd's).
        TempDir dir;
        const std::string log = dir.path() + "/sandboxd.log";
        auto args = [&](std::vector<std::string> extra) {
            std::vector<std::string> a = {
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mount --bind /bin/false /usr/bin/bwrap && exec \"$0\" \"$@\"",
                binPath("sandboxd"),
                "--state-dir",
                dir.path() + "/state"};
            a.insert(a.end(), extra.begin(), extra.end());
            return a;
        };
        std::string refused;
        try {
            ServerProcess s("/usr/bin/unshare", args({}), {"SANDBOX_API_KEY="}, log);
            FAIL("sandboxd started without bubblewrap");
        } catch (const std::runtime_error& e) {
            refused = readFile(log);
            INFO(e.what());
        }
        INFO(refused);
        CHECK(refused.find("bubblewrap cannot isolate sandboxes") != std::string::npos);
        CHECK(refused.find("--isolation none") != std::string::npos);
        // Asked for explicitly, it runs unisolated, and says so.
        ServerProcess none("/usr/bin/unshare", args({"--isolation", "none"}), {"SANDBOX_API_KEY="},
                           log);
        auto c = none.connect();
        auto health = call(c, "GET", "/health");
        CHECK(health.body["isolation"]["mode"] == "none");
        CHECK(readFile(log).find("WARNING: --isolation none") != std::string::npos);
    }
}
