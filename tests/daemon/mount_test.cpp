// POST /v1/sandbox/:id/mount and /unmount with a real S3-compatible server: s3rver (from
// tests/compat's npm packages) on loopback, s3fs on the host, the bucket attached inside the
// sandbox's own mount namespace. Skipped (with a message) where s3fs, /dev/fuse, bubblewrap,
// node or s3rver are missing; scripts/bootstrap installs all of them.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "daemon/daemon_test_util.hpp"
#include "support/s3_server.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;

namespace {

ExecResult shx(client::HttpConnection& c, const std::string& id, const std::string& script) {
    auto r = run(c, id, {"sh", "-c", script});
    INFO(script);
    INFO(r.describe());
    CHECK(r.wellFormed());
    return r;
}

// sandboxd's bucket mounts as it sees them (under its state directory, in its own mount
// namespace).
int hostMounts(const DaemonFixture& d) {
    std::string info = readFile("/proc/" + std::to_string(d.pid()) + "/mountinfo");
    int n = 0;
    for (std::size_t p = 0; (p = info.find(d.stateDir() + "/mounts/", p)) != std::string::npos; ++p)
        ++n;
    return n;
}

// Children of `parent` named s3fs (not zombies).
int s3fsChildren(pid_t parent) {
    int n = 0;
    for (const auto& p : childrenOf(parent)) n += p.comm == "s3fs" && p.state != 'Z';
    return n;
}

}  // namespace

TEST_SUITE("sandboxd bucket mounts") {
    TEST_CASE("mount: an S3 bucket is read and written in the sandbox, shared, unmounted") {
        if (std::string missing = missingForBucketMounts(); !missing.empty()) {
            MESSAGE("skipped: " << missing);
            return;
        }
        S3Server s3({"tb"});
        DaemonFixture d({}, {"--isolation", "bwrap"});
        const json creds = {{"accessKeyId", "S3RVER"}, {"secretAccessKey", "S3RVER"}};
        auto mountBody = [&](const std::string& path, json options = json::object()) {
            options["endpoint"] = s3.url();
            if (!options.contains("credentials")) options["credentials"] = creds;
            return json{{"bucket", "tb"}, {"mountPath", path}, {"options", options}}.dump();
        };
        const std::string a = newSandbox(d.http), b = newSandbox(d.http);

        // A: read-write at a path on the sandbox's read-only root (its directories are made).
        auto m = call(d.http, "POST", sandboxPath(a, "/mount"), mountBody("/mnt/data"));
        REQUIRE_MESSAGE(m.status == 200, m.raw);
        CHECK(m.raw == R"({"ok":true})");
        auto w = shx(d.http, a,
                     "mkdir -p /mnt/data/sub && printf 'hello bucket' > /mnt/data/sub/x.txt && "
                     "printf top > /mnt/data/top.txt && cat /mnt/data/sub/x.txt && "
                     "grep -c ' /mnt/data fuse.s3fs ' /proc/mounts");
        CHECK(w.exitCode == 0);
        CHECK(w.out == "hello bucket1\n");
        // The root stayed read-only.
        CHECK(shx(d.http, a, "touch /elsewhere").exitCode != 0);

        // B: the same bucket, read-only, only the prefix /sub/, below its workspace.
        m = call(d.http, "POST", sandboxPath(b, "/mount"),
                 mountBody("/workspace/bucket", {{"readOnly", true}, {"prefix", "/sub/"}}));
        REQUIRE_MESSAGE(m.status == 200, m.raw);
        auto r = shx(d.http, b, "ls /workspace/bucket; cat /workspace/bucket/x.txt");
        CHECK(r.out == "x.txt\nhello bucket");
        auto ro = shx(d.http, b, "echo no > /workspace/bucket/y.txt");
        CHECK(ro.exitCode != 0);
        CHECK(ro.err.find("Read-only file system") != std::string::npos);
        // Not on the host: the workspace directory there holds an empty mount point.
        CHECK(pathExists(d.workspace(b) + "/bucket"));
        CHECK_FALSE(pathExists(d.workspace(b) + "/bucket/x.txt"));
        CHECK(hostMounts(d) == 2);
        CHECK(s3fsChildren(d.pid()) == 2);

        // Refusals, each a 502 mount_error that says why.
        auto refused = [&](const std::string& id, const std::string& body,
                           const std::string& says) {
            auto e = call(d.http, "POST", sandboxPath(id, "/mount"), body);
            CAPTURE(body);
            CHECK(e.status == 502);
            CHECK(e.body["code"] == "mount_error");
            std::string msg = e.body.value("error", "");
            CHECK(msg.rfind("mount failed: ", 0) == 0);
            CHECK_MESSAGE(msg.find(says) != std::string::npos, msg);
        };
        refused(a, mountBody("/mnt/data"), "already in use");
        refused(a, mountBody("/mnt/./data/"), "already in use");
        refused(a, mountBody("/"), "root");
        refused(a, mountBody("/workspace"), "/workspace");
        refused(a, mountBody("/proc/bucket"), "/proc");
        refused(a, mountBody("/run/sandbox/x"), "/run");
        refused(a, mountBody("/mnt/c", {{"s3fsOptions", {"use_cache=/etc"}}}), "use_cache=/etc");
        refused(a, mountBody("/mnt/c", {{"s3fsOptions", {"nomultipart,passwd_file=/x"}}}),
                "one option");
        // Attaching fails after s3fs mounted: its host side is undone too (checked below).
        // A directory to make under a host directory bound read-only into the sandbox:
        refused(a, mountBody("/usr/not-there/bucket"),
                "creating the mount point: Read-only file system");
        // A path through a symbolic link the sandbox made (never followed):
        REQUIRE(shx(d.http, a, "ln -s /tmp /workspace/link").exitCode == 0);
        refused(a, mountBody("/workspace/link/bucket"), "opening the mount point");
        CHECK(shx(d.http, a, "test -e /tmp/bucket || echo untouched").out == "untouched\n");
        {
            json nb = json::parse(mountBody("/mnt/none"));
            nb["bucket"] = "no-such-bucket";
            refused(a, nb.dump(), "bucket or key not found");
        }
        if (!std::getenv("R2_ACCESS_KEY_ID") && !std::getenv("AWS_ACCESS_KEY_ID")) {
            json nc = json::parse(mountBody("/mnt/nocreds"));
            nc["options"].erase("credentials");
            refused(a, nc.dump(), "no credentials");
        }
        // Nothing was left behind by the failures.
        CHECK(hostMounts(d) == 2);
        CHECK(s3fsChildren(d.pid()) == 2);
        CHECK(shx(d.http, a, "ls /mnt").out == "data\n");

        // Unmount (found by the route's own normalisation too); its directory goes.
        auto u = call(d.http, "POST", sandboxPath(a, "/unmount"), R"({"mountPath":"/mnt/data/"})");
        CHECK_MESSAGE(u.status == 200, u.raw);
        CHECK(
            shx(d.http, a, "test -e /mnt/data || echo gone; grep -c fuse.s3fs /proc/mounts").out ==
            "gone\n0\n");
        u = call(d.http, "POST", sandboxPath(a, "/unmount"), R"({"mountPath":"/mnt/data"})");
        CHECK(u.status == 502);
        CHECK(u.body["code"] == "unmount_error");
        CHECK(hostMounts(d) == 1);
        CHECK(s3fsChildren(d.pid()) == 1);
        // What A wrote is still in the bucket, and mounting again finds it.
        REQUIRE(call(d.http, "POST", sandboxPath(a, "/mount"), mountBody("/data/again")).status ==
                200);
        CHECK(shx(d.http, a, "cat /data/again/top.txt").out == "top");

        // Destroying a sandbox undoes the host side of its mounts; so does a restart.
        CHECK(call(d.http, "DELETE", sandboxPath(b)).status == 204);
        CHECK(hostMounts(d) == 1);
        CHECK(s3fsChildren(d.pid()) == 1);
        // The agent killed (from the host: nothing inside can): that launch of the sandbox
        // ends, and the next request starts a fresh one.
        auto agents = agentPids(d.pid());
        REQUIRE(agents.size() == 1);
        REQUIRE(::kill(agents[0], SIGKILL) == 0);
        CHECK(waitFor([&] { return sandboxProcesses(d.pid(), a).empty(); }));
        CHECK(shx(d.http, a, "test -e /data/again/top.txt || echo fresh").out == "fresh\n");
        CHECK(hostMounts(d) == 0);
        CHECK(s3fsChildren(d.pid()) == 0);
    }
}
