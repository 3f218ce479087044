// Sessions: createSession (id, env, cwd, commandTimeout), getSession, deleteSession, isolation,
// a shell that exits (SessionTerminatedError, then recovery), session-bound file methods.
// The narrow bridge (sandboxd used through its /v1 routes only, as Cloudflare's bridge) creates
// and deletes sessions with /v1/sandbox/ID/session; a session there carries its creation-time
// cwd and env, and what one exec changes does not outlive it (bridge-api §6.6). A bridge
// without session routes makes createSession/deleteSession throw UnsupportedOperationError.
#include <set>
#include <thread>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

TEST_CASE("8 threads create sessions at once on one Sandbox: 8 sessions, 8 ids") {
    auto sb = freshSandbox("sessrace");
    std::vector<std::string> ids(8);
    std::vector<std::string> errors(8);
    std::vector<std::thread> threads;
    for (int i = 0; i < 8; ++i)
        threads.emplace_back([&, i] {
            try {
                ids[i] = sb.createSession().id();
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    for (auto& t : threads) t.join();
    for (const auto& e : errors) CHECK(e.empty());
    CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 8);
    for (const auto& id : ids) CHECK(id.rfind("session-", 0) == 0);
}

TEST_CASE("createSession with env and cwd; exec in the session") {
    auto sb = freshSandbox("sess");
    std::string d = ws() + "/" + uniqueName("sdir");
    sb.mkdir(d);
    if (isNarrow()) {
        auto s = sb.createSession({.id = "s1", .env = {{"SV", "one"}}, .cwd = d});
        CHECK(s.id() == "s1");
        CHECK(s.exec("pwd; echo $SV").stdoutText == inSession(d + "\none\n"));
        CHECK(s.exec("export X=1; cd /tmp; echo $X").stdoutText == inSession("1\n"));
        CHECK(s.exec("echo ${X-unset}; pwd").stdoutText == inSession("unset\n" + d + "\n"));
        CHECK(sb.exec("echo ${SV-unset}").stdoutText == inSession("unset\n"));
        CHECK(sb.createSession().id().rfind("session-", 0) == 0);
        CHECK_THROWS_AS(sb.createSession({.id = "s1"}), SandboxError);  // 502 session_error
        return;
    }
    auto s =
        sb.createSession({.id = "s1", .env = {{"SV", "one"}, {"DROPPED", std::nullopt}}, .cwd = d});
    CHECK(s.id() == "s1");
    auto r = s.exec("pwd; echo $SV; echo ${DROPPED-unset}");
    CHECK(r.stdoutText == inSession(d + "\none\nunset\n"));
    CHECK(r.sessionId == std::optional<std::string>("s1"));
    // State persists within the session, per-command options apply once.
    s.exec("export X=1; cd /tmp");
    CHECK(s.exec("echo $X; pwd").stdoutText == inSession("1\n/tmp\n"));
    CHECK(s.exec("echo $Y", {.env = {{"Y", "per-command"}}}).stdoutText ==
          inSession("per-command\n"));
    CHECK(s.exec("echo ${Y-unset}").stdoutText == inSession("unset\n"));
    // A default id.
    auto anon = sb.createSession();
    CHECK(anon.id().rfind("session-", 0) == 0);
    CHECK(anon.exec("pwd").stdoutText == inSession(ws() + "\n"));
    // The same id twice.
    CHECK_THROWS_AS(sb.createSession({.id = "s1"}), SessionAlreadyExistsError);
    CHECK_THROWS_AS(sb.createSession({.id = "__DISABLE_SESSION__"}), ValidationFailedError);
}

TEST_CASE("getSession reaches an existing session; sessions are isolated from each other") {
    auto sb = freshSandbox("iso");
    if (!isNarrow()) {
        sb.createSession({.id = "a"});
        sb.createSession({.id = "b"});
    }
    auto a = sb.getSession("a");
    auto b = sb.getSession("b");
    CHECK(a.id() == "a");
    if (isNarrow()) {
        // The bridge's exec streams, and the container runs a streamed command in a subshell of
        // the session's shell: what it changes does not outlive it.
        CHECK(a.exec("export ONLY_A=1; cd /tmp; echo $ONLY_A; pwd").stdoutText ==
              inSession("1\n/tmp\n"));
        CHECK(a.exec("echo ${ONLY_A-unset}; pwd").stdoutText == inSession("unset\n" + ws() + "\n"));
        return;
    }
    a.exec("export ONLY_A=1; cd /tmp");
    CHECK(sb.getSession("a").exec("echo ${ONLY_A-unset}; pwd").stdoutText ==
          inSession("1\n/tmp\n"));
    CHECK(b.exec("echo ${ONLY_A-unset}; pwd").stdoutText == inSession("unset\n" + ws() + "\n"));
    CHECK(sb.exec("echo ${ONLY_A-unset}; pwd").stdoutText == inSession("unset\n" + ws() + "\n"));
    // Sessions share the file system.
    a.writeFile(ws() + "/shared-" + sb.id() + ".txt", "from a");
    CHECK(b.readFile(ws() + "/shared-" + sb.id() + ".txt").content == "from a");
    // And they run concurrently: b is not blocked by a long command in a.
    auto slow = a.execStream("echo begun; sleep 30");
    REQUIRE(slow.next());  // start
    auto t0 = std::chrono::steady_clock::now();
    CHECK(b.exec("echo quick").stdoutText == inSession("quick\n"));
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
}

TEST_CASE("unknown sessions: created on first use; deleting one is an error") {
    auto sb = freshSandbox("unknown");
    auto s = sb.getSession("never-created");
    auto r = s.exec("pwd");
    CHECK(r.success);
    CHECK(r.stdoutText == inSession(ws() + "\n"));
    CHECK(r.sessionId == std::optional<std::string>("never-created"));
    if (isNarrow()) {
        try {
            sb.deleteSession("no-such-session");
            FAIL("no exception");
        } catch (const SandboxError& e) {
            CHECK(std::string(e.what()).find("not found") != std::string::npos);
        }
        return;
    }
    try {
        sb.deleteSession("no-such-session");
        FAIL("no exception");
    } catch (const SandboxError& e) {
        CHECK(e.code() == "SESSION_NOT_FOUND");
        CHECK(e.httpStatus() == 404);
        CHECK(e.contextString("sessionId") == "no-such-session");
    }
}

TEST_CASE("deleteSession ends the shell; the default session cannot be deleted") {
    auto sb = freshSandbox("del");
    CHECK_THROWS_AS(sb.deleteSession("sandbox-" + sb.id()), ValidationFailedError);
    if (isNarrow()) {
        sb.createSession({.id = "gone", .env = {{"MARK", "1"}}});
        CHECK(sb.getSession("gone").exec("echo ${MARK-unset}").stdoutText == inSession("1\n"));
        CHECK(sb.deleteSession("gone").sessionId == "gone");
        CHECK_THROWS_AS(sb.deleteSession("gone"), SandboxError);
        return;
    }
    auto s = sb.createSession({.id = "gone", .env = {{"MARK", "1"}}});
    s.exec("export LATER=1");
    auto r = sb.deleteSession("gone");
    CHECK(r.success);
    CHECK(r.sessionId == "gone");
    CHECK_FALSE(r.timestamp.empty());
    // The same id is a fresh session afterwards.
    CHECK(s.exec("echo ${MARK-unset} ${LATER-unset}").stdoutText == inSession("unset unset\n"));
    CHECK_NOTHROW(sb.deleteSession("gone"));
    CHECK_THROWS_AS(sb.deleteSession("gone"), SandboxError);
}

TEST_CASE("a session whose shell exits: SessionTerminatedError, then the same id recovers") {
    auto sb = freshSandbox("term");
    auto s = isNarrow() ? sb.getSession("t") : sb.createSession({.id = "t"});
    s.exec("export BEFORE=1");
    if (isNarrow()) {
        // Over the bridge the container runs the command in the session's stream mode, where the
        // exit status is the command's.
        auto r = s.exec("exit 3");
        CHECK(r.exitCode == 3);
    } else {
        try {
            s.exec("exit 3");
            FAIL("no exception");
        } catch (const SessionTerminatedError& e) {
            CHECK(e.code() == "SESSION_TERMINATED");
            CHECK(e.httpStatus() == 410);
            CHECK(e.context().value("exitCode", -1) == 3);
            CHECK(e.contextString("sessionId") == "t");
        }
    }
    auto r = s.exec("echo ${BEFORE-unset}");
    CHECK(r.success);
    if (!isNarrow()) CHECK(r.stdoutText == inSession("unset\n"));  // a fresh shell
    // The default session recovers the same way.
    if (hasDefaultSession()) {
        CHECK_THROWS_AS(sb.exec("exit 4"), SessionTerminatedError);
        CHECK(sb.exec("echo back").stdoutText == inSession("back\n"));
    }
}

TEST_CASE("commandTimeout limits every command of a session") {
    if (isNarrow()) return;  // createSession is not available there (see above)
    auto sb = freshSandbox("cto");
    auto s = sb.createSession({.id = "slow", .commandTimeout = 300ms});
    auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(s.exec("sleep 20"), CommandError);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK(s.exec("echo fine").stdoutText == inSession("fine\n"));
}

TEST_CASE("session-bound file methods and execStream use the session") {
    auto sb = freshSandbox("sfiles");
    std::string d = ws() + "/" + uniqueName("sd");
    sb.mkdir(d);
    auto s = isNarrow() ? sb.getSession("files") : sb.createSession({.id = "files", .cwd = d});
    // Absolute paths work the same in every session.
    s.writeFile(d + "/abs.txt", "abs");
    CHECK(s.readFile(d + "/abs.txt").content == "abs");
    CHECK(s.exists(d + "/abs.txt").exists);
    s.mkdir(d + "/m");
    s.renameFile(d + "/abs.txt", d + "/m/abs2.txt");
    s.moveFile(d + "/m/abs2.txt", d + "/abs3.txt");
    CHECK(s.listFiles(d).count == 2);
    CHECK(s.readFileStream(d + "/abs3.txt").collect() == "abs");
    s.deleteFile(d + "/abs3.txt");
    CHECK_FALSE(s.exists(d + "/abs3.txt").exists);
    if (!isNarrow()) {
        // Relative paths resolve against the session's working directory.
        s.writeFile("rel.txt", "rel");
        CHECK(sb.readFile(d + "/rel.txt").content == "rel");
        CHECK(s.readFile("rel.txt").content == "rel");
        CHECK(s.exists("rel.txt").exists);
    }
    std::string out;
    for (auto& ev : s.execStream("pwd"))
        if (ev.type == ExecEvent::Type::Stdout) out += ev.data;
    CHECK(out == (isNarrow() ? ws() : d) + "\n");
}

}  // namespace
}  // namespace sandbox::testing::sdk
