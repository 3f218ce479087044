// Background processes, port readiness and environment variables through the SDK, on every
// transport: lifecycle and exit codes (0/1/124/137/143), tree kills that leave nothing behind,
// a flood of output (bounded, and the stream says what was dropped), waitForLog across chunk
// boundaries, waitForPort against python3 -m http.server inside the sandbox, callbacks, and
// the precedence of sandbox-, session- and command-level variables. The narrow bridge has no
// container API: there the process methods throw UnsupportedOperationError.
#include <condition_variable>
#include <mutex>
#include <regex>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

using std::chrono::milliseconds;

template <class F>
void expectUnsupported(F&& f) {
    try {
        f();
        FAIL("no exception");
    } catch (const UnsupportedOperationError& e) {
        CHECK(std::string(e.what()).find("agent") != std::string::npos);
    }
}

TEST_CASE("processes over the narrow bridge: a typed error naming the transport needed") {
    if (!isNarrow()) return;
    auto sb = freshSandbox("pnarrow");
    expectUnsupported([&] { sb.startProcess("sleep 1"); });
    expectUnsupported([&] { sb.listProcesses(); });
    expectUnsupported([&] { sb.getProcess("x"); });
    expectUnsupported([&] { sb.killProcess("x"); });
    expectUnsupported([&] { sb.killAllProcesses(); });
    expectUnsupported([&] { sb.getProcessLogs("x"); });
    expectUnsupported([&] { sb.streamProcessLogs("x"); });
    expectUnsupported([&] { sb.getSession("s").setEnvVars({{"A", "1"}}); });
    bool errorSeen = false;
    try {
        sb.startProcess("true", {.onError = [&](const std::exception&) { errorSeen = true; }});
    } catch (const UnsupportedOperationError&) {
    }
    CHECK(errorSeen);
}

TEST_CASE("startProcess lifecycle: status, list, get, logs, exit codes 0 1 124 137 143") {
    if (isNarrow()) return;
    auto sb = freshSandbox("plife");
    auto p = sb.startProcess("echo out; echo err >&2", {.processId = "life-ok"});
    CHECK(p.id == "life-ok");
    CHECK(p.pid.has_value());
    CHECK(p.status == ProcessStatus::Running);
    CHECK(p.command == "echo out; echo err >&2");
    CHECK(p.waitForExit(20s).exitCode == 0);
    CHECK(p.getStatus() == ProcessStatus::Completed);
    auto logs = p.getLogs();
    CHECK(logs.stdoutText == "out\n");
    CHECK(logs.stderrText == "err\n");
    CHECK(sb.getProcessLogs("life-ok").stdoutText == "out\n");
    auto got = sb.getProcess("life-ok");
    REQUIRE(got);
    CHECK(got->status == ProcessStatus::Completed);
    CHECK(got->exitCode == 0);
    CHECK(got->endTime.has_value());
    CHECK_FALSE(sb.getProcess("no-such-process").has_value());
    CHECK_FALSE(sb.getProcess("bad/id").has_value());

    CHECK(sb.startProcess("exit 1").waitForExit(20s).exitCode == 1);
    auto slow = sb.startProcess("sleep 60", {.timeout = 300ms});
    CHECK(slow.waitForExit(20s).exitCode == 124);
    CHECK(slow.getStatus() == ProcessStatus::Failed);

    auto victim = sb.startProcess("sleep 60");
    bool listed = false;
    for (const auto& q : sb.listProcesses())
        if (q.id == victim.id) listed = q.status == ProcessStatus::Running;
    CHECK(listed);
    victim.kill();
    CHECK(victim.waitForExit(20s).exitCode == 143);
    CHECK(victim.getStatus() == ProcessStatus::Killed);
    CHECK_THROWS_AS(victim.kill(), CommandNotFoundError);

    auto hard = sb.startProcess("sleep 60");
    sb.killProcess(hard.id, "SIGKILL");
    CHECK(hard.waitForExit(20s).exitCode == 137);

    CHECK_THROWS_AS(sb.killProcess("no-such-process"), ProcessNotFoundError);
    CHECK_THROWS_AS(sb.getProcessLogs("no-such-process"), ProcessNotFoundError);
    CHECK_THROWS_AS(sb.startProcess("true", {.processId = "a/b"}), ValidationFailedError);
    CHECK_THROWS_AS(sb.startProcess("   "), CommandError);
    sb.startProcess("sleep 60", {.processId = "twice"});
    try {
        sb.startProcess("true", {.processId = "twice"});
        FAIL("no exception");
    } catch (const ProcessError& e) {
        CHECK(e.code() == "PROCESS_ALREADY_EXISTS");
        CHECK(e.httpStatus() == 409);
    }
    sb.startProcess("sleep 60");
    CHECK(sb.killAllProcesses() == 2);
    CHECK(sb.killAllProcesses() == 0);
}

TEST_CASE("callbacks run on threads the Sandbox owns: none runs once its last handle is gone") {
    if (isNarrow()) return;
    struct Seen {
        std::mutex m;
        std::condition_variable cv;
        int calls = 0;
        bool gone = false;
        int afterGone = 0;
    };
    auto seen = std::make_shared<Seen>();
    std::string name, id;
    {
        auto sb = freshSandbox("cbown");
        name = sb.id();
        auto p = sb.startProcess("while :; do echo tick; sleep 0.02; done",
                                 {.onOutput = [seen](const std::string&, const std::string&) {
                                     std::lock_guard lock(seen->m);
                                     ++seen->calls;
                                     if (seen->gone) ++seen->afterGone;
                                     seen->cv.notify_all();
                                 }});
        id = p.id;
        std::unique_lock lock(seen->m);
        REQUIRE(seen->cv.wait_for(lock, 30s, [&] { return seen->calls >= 3; }));
    }  // the last handles (Sandbox, Process) go: the pump is stopped and joined here
    std::unique_lock lock(seen->m);
    seen->gone = true;
    // The process still ticks every 20 ms: a callback left running would be seen at once.
    seen->cv.wait_for(lock, 500ms, [&] { return seen->afterGone > 0; });
    CHECK(seen->afterGone == 0);
    lock.unlock();
    getSandbox(client(), name).killProcess(id, "SIGKILL");
}

TEST_CASE("a kill leaves no descendant behind (setsid, double fork, nohup)") {
    if (isNarrow()) return;
    auto sb = freshSandbox("ptree");
    std::string m = uniqueName("escsdk");
    std::string half = m.substr(0, 4), rest = m.substr(4);
    auto p = sb.startProcess("m=" + half + "; m=${m}" + rest +
                             "; ln -sf /bin/sleep ./$m; setsid ./$m 1000 & ( (./$m 1000 &) & ); "
                             "nohup ./$m 1000 >/dev/null 2>&1 & ./$m 1000");
    REQUIRE(eventually([&] { return countProcesses(sb, m) == 4; }));
    p.kill();
    CHECK(eventually([&] { return countProcesses(sb, m) == 0; }, 10s));
    CHECK(p.waitForExit(20s).exitCode == 143);
}

TEST_CASE("a process that floods output: bounded logs, and the stream says what was dropped") {
    if (isNarrow()) return;
    auto sb = freshSandbox("pflood");
    auto p = sb.startProcess("head -c 20000000 /dev/zero | tr '\\0' y; echo; echo end");
    CHECK(p.waitForExit(60s).exitCode == 0);
    auto logs = p.getLogs();
    CHECK(logs.stdoutText.size() <= 1024 * 1024);
    CHECK(logs.stdoutText.ends_with("y\nend\n"));
    CHECK(logs.stdoutDroppedBytes + logs.stdoutText.size() == 20000000 + 5);
    std::uint64_t dropped = 0;
    std::string streamed;
    bool exited = false;
    for (auto& ev : sb.streamProcessLogs(p.id)) {
        if (ev.type == LogEvent::Type::Dropped) dropped += ev.bytes;
        if (ev.type == LogEvent::Type::Stdout) streamed += ev.data;
        if (ev.type == LogEvent::Type::Exit) exited = true;
    }
    CHECK(exited);
    CHECK(dropped == logs.stdoutDroppedBytes);
    CHECK(streamed == logs.stdoutText);
}

TEST_CASE("waitForLog: existing output first, lines split across chunks, regex, exit, timeout") {
    if (isNarrow()) return;
    auto sb = freshSandbox("plog");
    // The line arrives in two pieces with a pause between them.
    auto p = sb.startProcess(
        "printf 'Server lis'; sleep 0.3; printf 'tening on port 8080\\nnext\\n'; sleep 60");
    auto r = p.waitForLog("listening on", 20s);
    CHECK(r.line == "Server listening on port 8080");
    auto rx = p.waitForLog(std::regex(R"(on port (\d+))"), 20s);
    CHECK(rx.line == "Server listening on port 8080");
    REQUIRE(rx.match.size() == 2);
    CHECK(rx.match[1] == "8080");
    // Already produced output is found without new output.
    CHECK(p.waitForLog("next", 20s).line == "next");
    p.kill();

    auto stderrLine = sb.startProcess("echo warming >&2; echo 'Epoch 3 complete' >&2; sleep 60");
    CHECK(stderrLine.waitForLog(std::regex("Epoch (\\d+) complete"), 20s).match.at(1) == "3");
    stderrLine.kill();

    auto dies = sb.startProcess("echo nope; exit 2");
    try {
        dies.waitForLog("never", 20s);
        FAIL("no exception");
    } catch (const ProcessExitedBeforeReadyError& e) {
        CHECK(e.context()["exitCode"] == 2);
        CHECK(e.code() == "PROCESS_EXITED_BEFORE_READY");
    }
    // A last line without a newline still counts once the process ended.
    CHECK(sb.startProcess("printf 'final words'").waitForLog("final", 20s).line == "final words");

    auto quiet = sb.startProcess("sleep 60");
    try {
        quiet.waitForLog("x", 300ms);
        FAIL("no exception");
    } catch (const ProcessReadyTimeoutError& e) {
        CHECK(e.httpStatus() == 408);
        CHECK(e.context()["processId"] == quiet.id);
    }
    try {
        quiet.waitForExit(200ms);
        FAIL("no exception");
    } catch (const ProcessReadyTimeoutError& e) {
        CHECK(e.context()["condition"] == "process exit");
    }
    quiet.kill();
}

TEST_CASE("waitForPort: python3 -m http.server in http and tcp modes, early exit, timeout") {
    if (isNarrow()) return;
    auto sb = freshSandbox("pport");
    int port = closedPort();
    auto server = sb.startProcess("exec python3 -m http.server " + std::to_string(port) +
                                  " --bind 127.0.0.1");
    server.waitForPort(port, {.timeout = 30s});
    // As the TypeScript writes it: one status, or a range.
    server.waitForPort(port, {.path = "/no-such-page", .status = 404, .timeout = 30s});
    server.waitForPort(port, {.path = "/", .status = {200, 299}, .timeout = 30s});
    // A status the page never answers with is not ready.
    CHECK_THROWS_AS(
        server.waitForPort(
            port, {.path = "/no-such-page", .status = 200, .timeout = 1500ms, .interval = 100ms}),
        ProcessReadyTimeoutError);
    server.waitForPort(port, {.mode = PortCheckMode::Tcp, .timeout = 30s});
    CHECK(server.getStatus() == ProcessStatus::Running);
    server.kill();

    int closed = closedPort();
    auto dies = sb.startProcess("sleep 0.3; exit 5");
    try {
        dies.waitForPort(closed, {.timeout = 30s, .interval = 100ms});
        FAIL("no exception");
    } catch (const ProcessExitedBeforeReadyError& e) {
        CHECK(e.context()["exitCode"] == 5);
    }
    auto idle = sb.startProcess("sleep 60");
    CHECK_THROWS_AS(idle.waitForPort(closed, {.timeout = 400ms, .interval = 100ms}),
                    ProcessReadyTimeoutError);
    CHECK_THROWS_AS(idle.waitForPort(0), InvalidPortError);
    idle.kill();
}

TEST_CASE("startProcess callbacks: onStart, onOutput, onExit") {
    if (isNarrow()) return;
    auto sb = freshSandbox("pcb");
    std::mutex m;
    std::string output, startedId;
    std::optional<int> exitCode;
    bool exited = false;
    auto p = sb.startProcess("echo a; echo b >&2; exit 3",
                             {.onStart = [&](const Process& proc) { startedId = proc.id; },
                              .onOutput =
                                  [&](const std::string& stream, const std::string& data) {
                                      std::lock_guard lock(m);
                                      output += stream + ":" + data;
                                  },
                              .onExit =
                                  [&](std::optional<int> code) {
                                      std::lock_guard lock(m);
                                      exitCode = code;
                                      exited = true;
                                  }});
    CHECK(startedId == p.id);
    REQUIRE(eventually([&] {
        std::lock_guard lock(m);
        return exited;
    }));
    std::lock_guard lock(m);
    CHECK(exitCode == 3);
    CHECK(output.find("stdout:a\n") != std::string::npos);
    CHECK(output.find("stderr:b\n") != std::string::npos);
}

TEST_CASE("environment variables: sandbox, session and command levels, and unsetting") {
    auto sb = freshSandbox("penv");
    sb.setEnvVars({{"SB_A", "sandbox"}, {"SB_B", "sandbox"}, {"SB_C", "sandbox"}});
    CHECK_THROWS_AS(sb.setEnvVars({{"1BAD", "x"}}), ValidationFailedError);
    const std::string show = "echo ${SB_A-unset} ${SB_B-unset} ${SB_C-unset}";
    // The default session (or, on the narrow bridge, each command) sees the sandbox values;
    // a per-command value wins.
    CHECK(sb.exec(show).stdoutText == inSession("sandbox sandbox sandbox\n"));
    CHECK(sb.exec(show, {.env = {{"SB_C", "command"}}}).stdoutText ==
          inSession("sandbox sandbox command\n"));
    // Later changes reach it too; nullopt unsets.
    sb.setEnvVars({{"SB_B", "changed"}, {"SB_C", std::nullopt}});
    CHECK(sb.exec(show).stdoutText == inSession("sandbox changed unset\n"));
    if (isNarrow()) return;

    // A later session: sandbox values under its own; its setEnvVars is its own business.
    auto s = sb.createSession({.env = {{"SB_A", "session"}}});
    CHECK(s.exec(show).stdoutText == inSession("session changed unset\n"));
    s.setEnvVars({{"SB_C", "session-set"}, {"SB_B", std::nullopt}});
    CHECK(s.exec(show).stdoutText == inSession("session unset session-set\n"));
    CHECK(s.exec(show, {.env = {{"SB_C", "command"}}}).stdoutText ==
          inSession("session unset command\n"));
    CHECK(sb.exec(show).stdoutText == inSession("sandbox changed unset\n"));
    // Processes see the same layers.
    auto p = s.startProcess(show, {.env = {{"SB_A", "process"}}});
    p.waitForExit(20s);
    CHECK(p.getLogs().stdoutText == "process unset session-set\n");
    auto q = sb.startProcess(show);
    q.waitForExit(20s);
    CHECK(q.getLogs().stdoutText == "sandbox changed unset\n");

    // A second handle on the same sandbox: its default session exists already, and its
    // sandbox-level values still reach it.
    auto again = getSandbox(client(), sb.id());
    again.setEnvVars({{"SB_C", "second-handle"}});
    CHECK(again.exec(show).stdoutText == inSession("sandbox changed second-handle\n"));

    // Session-less calls (enableDefaultSession = false) merge the sandbox values per call.
    auto bare = getSandbox(client(), uniqueName("penvbare"), {.enableDefaultSession = false});
    bare.setEnvVars({{"SB_A", "bare"}});
    CHECK(bare.exec(show).stdoutText == "bare unset unset\n");
    CHECK(bare.exec(show, {.env = {{"SB_A", "command"}}}).stdoutText == "command unset unset\n");
    auto bp = bare.startProcess(show);
    bp.waitForExit(20s);
    CHECK(bp.getLogs().stdoutText == "bare unset unset\n");
}

}  // namespace
}  // namespace sandbox::testing::sdk
