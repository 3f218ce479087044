// Client and getSandbox: the transport, sandbox names (validation, mapping: the same name
// reaches the same sandbox, two names never meet), destroy(), many threads on one Sandbox.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

TEST_CASE("the client reports its transport") {
    switch (mode()) {
        case Mode::Embedded:
            CHECK(client().transport() == TransportKind::Embedded);
            CHECK(client().describe().find("embedded sandboxd (pid ") == 0);
            // What isolates its sandboxes, as sandboxd said at start.
            CHECK(client().describe().find("; isolation: bwrap; ") != std::string::npos);
            CHECK(client().describe().find("seccomp") != std::string::npos);
            break;
        case Mode::Bridge:
        case Mode::Narrow:
            CHECK(client().transport() == TransportKind::Bridge);
            CHECK(client().describe() == "bridge " + backendUrl());
            break;
        case Mode::Agent:
            CHECK(client().transport() == TransportKind::Agent);
            break;
    }
    // Copies share the backend.
    Client copy = client();
    CHECK(copy.describe() == client().describe());
}

TEST_CASE("the embedded default never runs unisolated unless told to") {
    if (mode() != Mode::Embedded) return;
    if (::geteuid() != 0) {
        MESSAGE("skipped: needs root to hide bubblewrap in a mount namespace of its own");
        return;
    }
    // A sandboxd that sees a /usr/bin/bwrap which always fails (in a mount namespace of its
    // own), as on a host without user namespaces.
    TempDir dir;
    const std::string wrapper = dir.path() + "/sandboxd";
    writeHostFile(wrapper,
                  "#!/bin/sh\nexec unshare -m --propagation private sh -c 'mount --bind /bin/false "
                  "/usr/bin/bwrap && exec \"$0\" \"$@\"' " +
                      binPath("sandboxd") + " \"$@\"\n");
    ::chmod(wrapper.c_str(), 0755);
    ClientOptions o;
    o.sandboxdPath = wrapper;
    try {
        Client c(o);
        FAIL("the embedded default started without isolation: " << c.describe());
    } catch (const ConnectionError& e) {
        std::string what = e.what();
        INFO(what);
        CHECK(what.find("bubblewrap cannot isolate sandboxes") != std::string::npos);
        CHECK(what.find("ClientOptions::unisolated") != std::string::npos);
    }
    // Asked for, it runs without isolation, and says so.
    o.unisolated = true;
    Client c(o);
    CHECK(c.describe().find("; isolation: none;") != std::string::npos);
    CHECK(getSandbox(c, uniqueName("unisolated")).exec("echo hi").stdoutText.rfind("hi", 0) == 0);
    // SANDBOX_ISOLATION: none or bwrap, nothing else.
    ::setenv("SANDBOX_ISOLATION", "maybe", 1);
    CHECK_THROWS_AS(Client(ClientOptions{}), ValidationFailedError);
    ::unsetenv("SANDBOX_ISOLATION");
}

TEST_CASE("getSandbox validates names as the TypeScript SDK does") {
    auto code = [](const std::string& name) -> std::string {
        try {
            getSandbox(client(), name);
            return "ok";
        } catch (const SandboxSecurityError& e) {
            return e.code();
        }
    };
    CHECK(code("") == "INVALID_SANDBOX_ID_LENGTH");
    CHECK(code(std::string(64, 'a')) == "INVALID_SANDBOX_ID_LENGTH");
    CHECK(code(std::string(63, 'a')) == "ok");
    CHECK(code("-x") == "INVALID_SANDBOX_ID_HYPHENS");
    CHECK(code("x-") == "INVALID_SANDBOX_ID_HYPHENS");
    CHECK(code("admin") == "RESERVED_SANDBOX_ID");
    CHECK(code("Admin") == "RESERVED_SANDBOX_ID");
    CHECK(code("user-123") == "ok");
    CHECK(code("My Box/with:odd chars") == "ok");
    try {
        getSandbox(client(), "");
    } catch (const SandboxSecurityError& e) {
        CHECK(e.httpStatus() == 400);
    }
    CHECK(getSandbox(client(), "user-123").id() == "user-123");
    CHECK(getSandbox(client(), "MixedCase", {.normalizeId = true}).id() == "mixedcase");
    CHECK(getSandbox(client(), "MixedCase").id() == "MixedCase");
}

TEST_CASE("the same name reaches the same sandbox; different names do not meet") {
    const std::string name = uniqueName("Same");
    auto one = getSandbox(client(), name);
    auto two = getSandbox(client(), name);
    const std::string path = ws() + "/" + uniqueName("marker") + ".txt";
    one.writeFile(path, "written through one");
    CHECK(two.readFile(path).content == "written through one");
    // Another client of the same backend too.
    Client again(clientOptions());
    CHECK(getSandbox(again, name).readFile(path).content == "written through one");

    auto other = getSandbox(client(), name + "-other");
    auto upper = getSandbox(client(), name + "x");
    auto lower = getSandbox(client(), name + "X");  // names are case-sensitive
    upper.writeFile(path + ".case", "x");
    if (isAgent()) {
        // An agent URL addresses one sandbox: every name shares it.
        CHECK(other.exists(path).exists);
        CHECK(lower.exists(path + ".case").exists);
    } else {
        CHECK_FALSE(other.exists(path).exists);
        CHECK_FALSE(lower.exists(path + ".case").exists);
        CHECK(upper.exists(path + ".case").exists);
        // Processes and sessions are per sandbox as well.
        one.exec("export WHO=one");
        CHECK(two.exec("echo ${WHO-unset}").stdoutText ==
              inSession(hasDefaultSession() ? "one\n" : "unset\n"));
        CHECK(other.exec("echo ${WHO-unset}").stdoutText == inSession("unset\n"));
    }
}

TEST_CASE("destroy() removes the sandbox; the name then starts afresh") {
    auto sb = freshSandbox("destroy");
    const std::string path = ws() + "/" + uniqueName("before") + ".txt";
    sb.writeFile(path, "x");
    if (isAgent()) {
        try {
            sb.destroy();
            FAIL("no exception");
        } catch (const UnsupportedOperationError& e) {
            CHECK(e.code() == "UNSUPPORTED_OPERATION");
            CHECK(std::string(e.what()).find("bridge") != std::string::npos);
        }
        CHECK(sb.exists(path).exists);  // nothing happened
        return;
    }
    auto probe = getSandbox(client(), sb.id(), {.enableDefaultSession = false});
    const std::string marker = "sleep 4444." + std::to_string(::getpid());
    auto bg = sb.exec("(" + marker + " > /dev/null 2>&1 &) ; echo started");
    CHECK(bg.stdoutText == inSession("started\n"));
    CHECK(eventually([&] { return countProcesses(probe, marker) == 1; }));
    sb.exec("export SET_BEFORE=1");
    sb.destroy();
    // Using the handle again creates a new, empty sandbox of the same name.
    CHECK_FALSE(sb.exists(path).exists);
    CHECK(countProcesses(probe, marker) == 0);
    CHECK(eventually([&] { return countHostProcesses(marker) == 0; }));
    CHECK(sb.exec("echo ${SET_BEFORE-unset}").stdoutText == inSession("unset\n"));
    CHECK_NOTHROW(sb.destroy());
    CHECK_NOTHROW(sb.destroy());  // destroying what does not exist is fine
}

TEST_CASE("ScopedSandbox destroys its sandbox at the end of the scope, also on an exception") {
    if (isAgent()) return;  // the agent transport cannot destroy (see the test above)
    const std::string name = uniqueName("scoped");
    const std::string path = ws() + "/scoped.txt";
    try {
        ScopedSandbox sb(getSandbox(client(), name));
        sb->writeFile(path, "x");
        CHECK((*sb).exists(path).exists);
        sb->exec("exit 3", {});  // a result, not an error
        throw std::runtime_error("the user's own failure");
    } catch (const std::runtime_error&) {
    }
    // Gone: the name starts afresh.
    CHECK_FALSE(getSandbox(client(), name).exists(path).exists);

    // release() keeps it; destroy() reports what happens and disarms the guard.
    Sandbox kept = [&] {
        ScopedSandbox sb(getSandbox(client(), name));
        sb->writeFile(path, "kept");
        return sb.release();
    }();
    CHECK(kept.readFile(path).content == "kept");
    ScopedSandbox again(kept);
    CHECK(static_cast<bool>(again));
    again.destroy();
    CHECK_FALSE(static_cast<bool>(again));
    CHECK_FALSE(kept.exists(path).exists);
    // Moving hands the duty over: only the destination destroys.
    ScopedSandbox first(getSandbox(client(), name));
    first->writeFile(path, "moved");
    ScopedSandbox second(std::move(first));
    CHECK_FALSE(static_cast<bool>(first));  // NOLINT(bugprone-use-after-move)
    CHECK(second->readFile(path).content == "moved");
}

TEST_CASE("8 threads share one Sandbox, 20 exec each") {
    auto sb = freshSandbox("threads");
    sb.exec("true");
    std::atomic<int> ok{0};
    std::vector<std::string> failures;
    std::mutex m;
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 20; ++i) {
                std::string tag = "t" + std::to_string(t) + "-" + std::to_string(i);
                try {
                    auto r = sb.exec("echo " + tag + "; echo " + tag + " >&2; bash -c 'exit " +
                                     std::to_string(i % 3) + "'");
                    if (r.stdoutText == inSession(tag + "\n") &&
                        r.stderrText == inSession(tag + "\n") && r.exitCode == i % 3)
                        ++ok;
                    else {
                        std::lock_guard lock(m);
                        failures.push_back(tag + ": " + r.stdoutText + "|" + r.stderrText + "|" +
                                           std::to_string(r.exitCode));
                    }
                } catch (const std::exception& e) {
                    std::lock_guard lock(m);
                    failures.push_back(tag + ": " + e.what());
                }
            }
        });
    for (auto& t : threads) t.join();
    std::string report;
    for (const auto& f : failures) report += f + "\n";
    INFO(report);
    CHECK(failures.empty());
    CHECK(ok == 160);

    // Mixed operations from several threads, each on its own file.
    std::string d = freshDir("mt");
    threads.clear();
    failures.clear();
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&, t] {
            auto fail = [&](const std::string& what) {
                std::lock_guard lock(m);
                failures.push_back("thread " + std::to_string(t) + ": " + what);
            };
            try {
                std::string p = d + "/f" + std::to_string(t) + ".txt";
                for (int i = 0; i < 5; ++i) {
                    shared().writeFile(p, std::to_string(i));
                    if (auto c = shared().readFile(p).content; c != std::to_string(i))
                        return fail("read " + c);
                    std::string out;
                    for (auto& ev : shared().execStream("cat " + p))
                        if (ev.type == ExecEvent::Type::Stdout) out += ev.data;
                    if (out.substr(0, 1) != std::to_string(i)) return fail("streamed " + out);
                }
            } catch (const std::exception& e) {
                fail(e.what());
            }
        });
    for (auto& t : threads) t.join();
    report.clear();
    for (const auto& f : failures) report += f + "\n";
    INFO(report);
    CHECK(failures.empty());
}

TEST_CASE("a bridge is asked once what it serves; a failed answer is an error, asked again") {
    if (mode() != Mode::Bridge) return;  // one fake bridge, whatever the suite's mode
    // /health answers 503 (with no retry budget: an error), then names the container API
    // passthrough; /exec and the passthrough answer differently, so the test sees the route.
    std::atomic<int> healths{0};
    std::atomic<bool> passthrough{true};
    FakeServer bridge([&](const std::string&, const std::string& target, const std::string&) {
        if (target == "/health") {
            if (++healths == 1) return httpResponse(503, "text/plain", "starting");
            return httpResponse(200, "application/json",
                                passthrough
                                    ? R"({"ok":true,"containerApi":"/v1/sandbox/{id}/agent"})"
                                    : R"({"ok":true})");
        }
        if (target.find("/agent/api/session/create") != std::string::npos)
            return httpResponse(200, "application/json", R"({"success":true,"id":"s"})");
        if (target.find("/agent/api/execute") != std::string::npos)
            return httpResponse(
                200, "application/json",
                R"({"success":true,"exitCode":0,"stdout":"via agent","stderr":"","command":"c"})");
        if (target.find("/exec") != std::string::npos)
            return chunkedResponse(200, "text/event-stream",
                                   {"event: stdout\ndata: dmlhIGJyaWRnZQo=\n\n",
                                    "event: exit\ndata: {\"exit_code\":0}\n\n"});
        return httpResponse(404, "text/plain", "404 Not Found");
    });
    ClientOptions o;
    o.apiUrl = bridge.url();
    o.apiKey = "k";
    o.retryBudget = 0ms;
    Client c(o);
    auto sb = getSandbox(c, "probe");  // no I/O yet
    CHECK(healths == 0);
    CHECK_THROWS_AS(sb.exec("c"), ConnectionError);
    CHECK(sb.exec("c").stdoutText == "via agent");
    CHECK(sb.exec("c").stdoutText == "via agent");
    // Asked once per Client: the answer holds for every Sandbox made from it.
    passthrough = false;
    CHECK(getSandbox(c, "other").exec("c").stdoutText == "via agent");
    CHECK(healths == 2);
    // A bridge without the passthrough (Cloudflare's): exec over /exec, its output normalised
    // as the container API's session mode ("via bridge\n" -> "via bridge").
    Client narrow(o);
    CHECK(getSandbox(narrow, "probe").exec("c").stdoutText == "via bridge");
    CHECK(healths == 3);
}

}  // namespace
}  // namespace sandbox::testing::sdk
