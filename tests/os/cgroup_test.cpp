// The cgroup layer (src/os/cgroup.*) against a cgroupfs-shaped fake: detection of v1 and v2,
// the limit files each writes, teardown that leaves no process behind (cgroup.kill, or signals
// until the group is empty), refusals that leave nothing behind, and the groups a killed daemon
// left. The real hierarchies are exercised by the daemon's isolation tests.
#include <doctest/doctest.h>

#include "os/cgroup.hpp"
#include "os/fake_cgroupfs.hpp"

using sandbox::os::CgroupLimits;
using sandbox::os::Cgroups;
using sandbox::os::CgroupVersion;
using sandbox::testing::FakeCgroupFs;

namespace {
const std::string R = "/sys/fs/cgroup";
}

TEST_SUITE("os.cgroup") {
    TEST_CASE("detection: v2 with memory, pids and cpu; v2 without memory; v1; none") {
        auto v2 = FakeCgroupFs::v2(R, "cpuset cpu io memory hugetlb pids rdma misc");
        auto cg = Cgroups::detect(v2, R);
        CHECK(cg.version() == CgroupVersion::V2);
        CHECK(cg.cpuAvailable());
        CHECK(cg.describe() == "cgroup v2 (memory, pids, cpu)");

        auto noMemory = FakeCgroupFs::v2(R, "cpu pids");
        auto none = Cgroups::detect(noMemory, R);
        CHECK(none.version() == CgroupVersion::None);
        CHECK(none.whyUnavailable().find("memory and pids") != std::string::npos);
        CHECK(none.whyUnavailable().find("cpu pids") != std::string::npos);
        CHECK_FALSE(none.open("sandboxd-1"));

        auto v1 = FakeCgroupFs::v1(R, {"memory", "pids"});
        auto one = Cgroups::detect(v1, R);
        CHECK(one.version() == CgroupVersion::V1);
        CHECK_FALSE(one.cpuAvailable());
        CHECK(one.describe() == "cgroup v1 (memory, pids)");

        auto bare = FakeCgroupFs::v1(R, {"cpu"});
        CHECK(Cgroups::detect(bare, R).version() == CgroupVersion::None);
    }

    TEST_CASE("v2: the daemon's group enables the controllers; a sandbox's gets every limit") {
        auto fs = FakeCgroupFs::v2(R, "cpu memory pids");
        auto cg = Cgroups::detect(fs, R);
        REQUIRE(cg.open("sandboxd-42"));
        // Enabled at the root for the daemon's group, and in the daemon's group for sandboxes.
        CHECK(fs.file(R + "/cgroup.subtree_control") == "memory pids cpu");
        CHECK(fs.file(R + "/sandboxd-42/cgroup.subtree_control") == "memory pids cpu");
        auto procs = cg.create("abc.1", {512ull << 20, 100, 0.5});
        REQUIRE(procs.size() == 1);
        CHECK(procs[0] == R + "/sandboxd-42/abc.1/cgroup.procs");
        const std::string g = R + "/sandboxd-42/abc.1";
        CHECK(fs.file(g + "/memory.max") == std::to_string(512ull << 20));
        CHECK(fs.file(g + "/memory.swap.max") == "0");
        CHECK(fs.file(g + "/pids.max") == "100");
        CHECK(fs.file(g + "/cpu.max") == "50000 100000");
        CHECK(cg.path("abc.1") == g);
        // No CPU limit asked: cpu.max stays as it was.
        cg.create("def.1", {1 << 20, 10, 0});
        CHECK(fs.file(R + "/sandboxd-42/def.1/cpu.max") == "max 100000");
    }

    TEST_CASE("v2 without swap accounting: memory.swap.max is optional, the rest is not") {
        auto fs = FakeCgroupFs::v2(R, "memory pids");
        fs.swap = false;
        auto cg = Cgroups::detect(fs, R);
        REQUIRE(cg.open("sandboxd-7"));
        CHECK_FALSE(cg.cpuAvailable());
        CHECK_NOTHROW(cg.create("a.1", {1 << 20, 5, 0}));
        // A CPU limit cannot be had without the cpu controller: refused, never dropped.
        CHECK_THROWS_WITH_AS(cg.create("b.1", {1 << 20, 5, 1.0}),
                             doctest::Contains("cpu controller"), std::runtime_error);
        CHECK_FALSE(fs.isDir(R + "/sandboxd-7/b.1"));
    }

    TEST_CASE("a limit the kernel refuses fails the sandbox and leaves no group behind") {
        auto fs = FakeCgroupFs::v2(R, "memory pids cpu");
        auto cg = Cgroups::detect(fs, R);
        REQUIRE(cg.open("sandboxd-9"));
        fs.refuse.insert(R + "/sandboxd-9/x.1/pids.max");
        CHECK_THROWS_WITH_AS(cg.create("x.1", {1 << 20, 5, 0}), doctest::Contains("pids.max"),
                             std::runtime_error);
        CHECK_FALSE(fs.isDir(R + "/sandboxd-9/x.1"));
    }

    TEST_CASE("v2 teardown: one write to cgroup.kill empties the group, which is removed") {
        auto fs = FakeCgroupFs::v2(R, "memory pids cpu");
        auto cg = Cgroups::detect(fs, R);
        REQUIRE(cg.open("sandboxd-5"));
        cg.create("s.1", {1 << 20, 5, 0});
        const std::string g = R + "/sandboxd-5/s.1";
        fs.putProcess(g, 100);
        fs.putProcess(g, 101);
        CHECK(fs.removeDir(g) == -EBUSY);  // the fake refuses like the kernel
        CHECK(cg.destroy("s.1"));
        CHECK_FALSE(fs.isDir(g));
        CHECK(fs.signals.empty());  // the kernel did the killing
        cg.close();
        CHECK_FALSE(fs.isDir(R + "/sandboxd-5"));
    }

    TEST_CASE("v2 before cgroup.kill (kernels < 5.14), and v1: every member gets SIGKILL") {
        for (bool v1 : {false, true}) {
            CAPTURE(v1);
            auto fs = v1 ? FakeCgroupFs::v1(R, {"memory", "pids", "cpu"})
                         : FakeCgroupFs::v2(R, "memory pids cpu", /*hasKill=*/false);
            auto cg = Cgroups::detect(fs, R);
            REQUIRE(cg.open("sandboxd-3"));
            auto procs = cg.create("s.1", {1 << 20, 5, 2.0});
            CHECK(procs.size() == (v1 ? 3u : 1u));
            if (v1) {
                CHECK(fs.file(R + "/pids/sandboxd-3/s.1/pids.max") == "5");
                CHECK(fs.file(R + "/memory/sandboxd-3/s.1/memory.limit_in_bytes") ==
                      std::to_string(1 << 20));
                CHECK(fs.file(R + "/memory/sandboxd-3/s.1/memory.memsw.limit_in_bytes") ==
                      std::to_string(1 << 20));
                CHECK(fs.file(R + "/cpu/sandboxd-3/s.1/cpu.cfs_quota_us") == "200000");
                CHECK(fs.file(R + "/cpu/sandboxd-3/s.1/cpu.cfs_period_us") == "100000");
            }
            // A member forks as it is killed: its child lands in the group and must go too.
            for (const auto& p : procs) {
                std::string g = p.substr(0, p.rfind('/'));
                fs.putProcess(g, 200);
                fs.forkOnKill[200] = {g, 201};
            }
            CHECK(cg.destroy("s.1"));
            bool killed200 = false, killed201 = false;
            for (auto [pid, sig] : fs.signals) {
                CHECK(sig == SIGKILL);
                killed200 |= pid == 200;
                killed201 |= pid == 201;
            }
            CHECK(killed200);
            CHECK(killed201);
            for (const auto& p : procs) CHECK_FALSE(fs.isDir(p.substr(0, p.rfind('/'))));
        }
    }

    TEST_CASE("a process that never dies: teardown gives up after a bounded wait") {
        auto fs = FakeCgroupFs::v2(R, "memory pids");
        auto cg = Cgroups::detect(fs, R);
        REQUIRE(cg.open("sandboxd-8"));
        cg.create("s.1", {1 << 20, 5, 0});
        fs.putProcess(R + "/sandboxd-8/s.1", 300);
        fs.stubborn.insert(300);
        CHECK_FALSE(cg.destroy("s.1"));
        CHECK(fs.isDir(R + "/sandboxd-8/s.1"));
        CHECK(fs.pauses > 0);
        CHECK(fs.pauses < 1000);
    }

    TEST_CASE("groups a killed daemon left are found, emptied and removed; live ones stay") {
        for (bool v1 : {false, true}) {
            CAPTURE(v1);
            auto fs = v1 ? FakeCgroupFs::v1(R, {"memory", "pids"})
                         : FakeCgroupFs::v2(R, "memory pids");
            auto dead = Cgroups::detect(fs, R);
            REQUIRE(dead.open("sandboxd-100"));
            auto procs = dead.create("gone.3", {1 << 20, 5, 0});
            for (const auto& p : procs) fs.putProcess(p.substr(0, p.rfind('/')), 500);
            auto alive = Cgroups::detect(fs, R);
            REQUIRE(alive.open("sandboxd-200"));
            alive.create("kept.1", {1 << 20, 5, 0});
            // Not a daemon's group: names that only look like one.
            const std::string top = v1 ? R + "/pids" : R;
            fs.makeDir(top + "/sandboxd-abc", 0755);
            fs.makeDir(top + "/other", 0755);

            auto next = Cgroups::detect(fs, R);
            int removed = next.removeStale("sandboxd-", [](pid_t p) { return p == 200; });
            CHECK(removed == 1);
            CHECK_FALSE(fs.isDir(top + "/sandboxd-100"));
            CHECK(fs.isDir(top + "/sandboxd-200/kept.1"));
            CHECK(fs.isDir(top + "/sandboxd-abc"));
            CHECK(fs.isDir(top + "/other"));
            bool killed = false;
            for (auto [pid, sig] : fs.signals) killed |= pid == 500 && sig == SIGKILL;
            CHECK(killed == v1);  // v2 kills through cgroup.kill
            CHECK(fs.procs(top + "/sandboxd-100/gone.3").empty());
        }
    }

    TEST_CASE("a hierarchy sandboxd may not write: open() says why and turns cgroups off") {
        auto fs = FakeCgroupFs::v2(R, "memory pids");
        fs.refuse.insert(R + "/cgroup.subtree_control");
        auto cg = Cgroups::detect(fs, R);
        CHECK_FALSE(cg.open("sandboxd-4"));
        CHECK(cg.version() == CgroupVersion::None);
        CHECK(cg.whyUnavailable().find("memory controller") != std::string::npos);
        CHECK_FALSE(fs.isDir(R + "/sandboxd-4"));
        CHECK_THROWS(cg.create("x", {1, 1, 0}));
    }
}
