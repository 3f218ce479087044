// POST /api/execute: response shape, session/sessionless output rules (§9.3), exit codes,
// shell death, background starts and timeouts (§9.4).
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "agent/agent_test_util.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using namespace sandbox::testing::agent;

namespace {
const std::string kNoSession = "__DISABLE_SESSION__";

std::string seqLines(int n, bool trailingNewline) {
    std::string s;
    for (int i = 1; i <= n; ++i) {
        s += std::to_string(i);
        if (i < n || trailingNewline) s += '\n';
    }
    return s;
}
}  // namespace

TEST_CASE("execute: session state persists; per-command env and cwd do not") {
    AgentFixture a;
    auto r = a.post("/api/execute", R"({"command":"cd /; export FOO=bar; f(){ echo fn; }"})");
    CHECK(r.status == 200);
    r = a.post("/api/execute", R"({"command":"pwd; echo $FOO; f"})");
    auto j = json::parse(r.body);
    CHECK(j["stdout"] == "/\nbar\nfn");
    CHECK(j["success"] == true);
    CHECK_FALSE(j.contains("sessionId"));

    r = a.post("/api/execute", R"({"command":"pwd; echo $X","cwd":"/tmp","env":{"X":"1"}})");
    CHECK(json::parse(r.body)["stdout"] == "/tmp\n1");
    r = a.post("/api/execute", R"({"command":"pwd; echo \"[$X]\""})");
    CHECK(json::parse(r.body)["stdout"] == "/\n[]");
}

TEST_CASE("execute: success response shape") {
    AgentFixture a;
    auto r = post(a, "/api/execute", {{"command", "echo hello; echo err >&2"}});
    REQUIRE(r.status == 200);
    CHECK(r.contentType == "application/json");
    json j = r.body;
    CHECK(j["success"] == true);
    CHECK(j["exitCode"].is_number_integer());
    CHECK(j["exitCode"] == 0);
    CHECK(j["stdout"] == "hello");
    CHECK(j["stderr"] == "err");
    CHECK(j["command"] == "echo hello; echo err >&2");
    CHECK(j["duration"].is_number());
    CHECK(j["duration"] == 0);
    CHECK(isIsoTimestamp(j["timestamp"]));
    CHECK_FALSE(j.contains("sessionId"));  // implicit default: omitted

    // An explicit id is echoed, including "default" and the sessionless marker.
    j = exec(a, "true", "default");
    CHECK(j["sessionId"] == "default");
    j = exec(a, "true", "s1");
    CHECK(j["sessionId"] == "s1");
    j = exec(a, "true", kNoSession);
    CHECK(j["sessionId"] == kNoSession);

    // A failing command is still HTTP 200, with success false.
    j = exec(a, "false");
    CHECK(j["success"] == false);
    CHECK(j["exitCode"] == 1);
}

TEST_CASE("execute: session-mode output normalisation (§9.3)") {
    AgentFixture a;
    CHECK(out(a, "echo hi") == "hi");
    CHECK(out(a, "printf 'a\\n\\n'") == "a\n");
    CHECK(out(a, "printf partial") == "partial");
    CHECK(out(a, "printf 'x\\ny'") == "x\ny");
    CHECK(out(a, "echo; echo") == "\n");
    CHECK(out(a, "true") == "");
    CHECK(out(a, "printf 'cr\\r\\n'") == "cr\r");

    // stdout and stderr are captured separately.
    json j = exec(a, "echo out1; echo err1 >&2; echo out2; echo err2 >&2");
    CHECK(j["stdout"] == "out1\nout2");
    CHECK(j["stderr"] == "err1\nerr2");

    // NUL bytes are dropped; invalid UTF-8 becomes U+FFFD; valid multibyte text is kept.
    CHECK(out(a, "printf 'a\\000b\\000\\n'") == "ab");
    CHECK(out(a, "printf '\\377x\\n'") == "\xEF\xBF\xBDx");
    CHECK(out(a, "printf 'caf\\303\\251 \\342\\202\\254'") == "caf\xC3\xA9 \xE2\x82\xAC");
    j = exec(a, "printf '\\300\\n' >&2");
    CHECK(j["stderr"] == "\xEF\xBF\xBD");
}

TEST_CASE("execute: large outputs arrive intact") {
    AgentFixture a;
    // ~5.3 MB of numbered lines: session mode drops only the final newline.
    json j = exec(a, "seq 1 800000");
    CHECK(j["exitCode"] == 0);
    CHECK(j["stdout"].get<std::string>() == seqLines(800000, false));

    // 5 MB without any newline.
    j = exec(a, "head -c 5000000 /dev/zero | tr '\\0' x");
    CHECK(j["stdout"].get<std::string>() == std::string(5000000, 'x'));

    // The same on stderr, and in sessionless mode (raw, newline kept).
    j = exec(a, "seq 1 300000 >&2");
    CHECK(j["stderr"].get<std::string>() == seqLines(300000, false));
    j = exec(a, "seq 1 800000", kNoSession);
    CHECK(j["stdout"].get<std::string>() == seqLines(800000, true));
}

TEST_CASE("execute: heredocs, syntax errors, return/break, stdin") {
    AgentFixture a;
    CHECK(out(a, "cat <<EOF\nline1\n  line2\n$((1+2))\nEOF") == "line1\n  line2\n3");
    CHECK(out(a, "cat <<'EOF'\n$HOME\nEOF\necho after") == "$HOME\nafter");

    // A syntax error is exit 2 and leaves the session usable, with its state.
    exec(a, "export KEEP=kept");
    json j = exec(a, "if then fi");
    CHECK(j["exitCode"] == 2);
    CHECK(j["stderr"].get<std::string>().find("syntax error") != std::string::npos);
    j = exec(a, "echo 'unterminated");
    CHECK(j["exitCode"] == 2);
    CHECK(out(a, "echo $KEEP") == "kept");

    // return and break at top level do not break the protocol.
    j = exec(a, "return 3");
    CHECK(j["exitCode"].is_number_integer());
    CHECK(out(a, "echo $KEEP") == "kept");
    exec(a, "break");
    exec(a, "continue");
    CHECK(out(a, "echo $KEEP") == "kept");
    // A command that looks like the agent's own framing is just text.
    CHECK(out(a, "echo 'S 0'; printf 'B 1\\n'") == "S 0\nB 1");

    // stdin is at EOF at once: cat returns immediately, read fails.
    CHECK(out(a, "cat") == "");
    CHECK(out(a, "read x; echo rc=$?") == "rc=1");
    CHECK(out(a, "cat", kNoSession) == "");
}

TEST_CASE("execute: exit codes") {
    AgentFixture a;
    CHECK(exec(a, "false")["exitCode"] == 1);
    CHECK(exec(a, "(exit 42)")["exitCode"] == 42);
    json j = exec(a, "nosuchcommand_xyz");
    CHECK(j["exitCode"] == 127);
    CHECK(j["stderr"].get<std::string>().find("command not found") != std::string::npos);
    CHECK(exec(a, "(exit 42)", kNoSession)["exitCode"] == 42);
    CHECK(exec(a, "nosuchcommand_xyz", kNoSession)["exitCode"] == 127);
    CHECK(exec(a, "exit 5", kNoSession)["exitCode"] == 5);
    CHECK(exec(a, "kill -TERM $$", kNoSession)["exitCode"] == 143);
}

TEST_CASE("execute: sessionless mode") {
    AgentFixture a;
    json j = exec(a, "echo hi", kNoSession);
    CHECK(j["stdout"] == "hi\n");  // raw, not normalised
    CHECK(j["sessionId"] == kNoSession);
    CHECK(exec(a, "printf 'a\\n\\n'", kNoSession)["stdout"] == "a\n\n");
    CHECK(exec(a, "echo e >&2", kNoSession)["stderr"] == "e\n");

    // No state between calls; cwd defaults to the workspace.
    exec(a, "export SBXT_GONE=1; cd /; f(){ :; }", kNoSession);
    CHECK(exec(a, "echo \"[$SBXT_GONE]\"; pwd; type f >/dev/null 2>&1 || echo nofn",
               kNoSession)["stdout"] == "[]\n" + a.workspace() + "\nnofn\n");

    // Per-call env and cwd.
    j = exec(a, "echo $SBXT_A-$SBXT_B; pwd", kNoSession,
             {{"env", {{"SBXT_A", "x y"}, {"SBXT_B", nullptr}}}, {"cwd", "/tmp"}});
    CHECK(j["stdout"] == "x y-\n/tmp\n");

    // A missing cwd: exit 1 with the reference's message, the command does not run.
    j = exec(a, "touch ran", kNoSession, {{"cwd", "/nonexistent-dir"}});
    CHECK(j["exitCode"] == 1);
    CHECK(j["success"] == false);
    CHECK(j["stderr"] == "Failed to change directory to '/nonexistent-dir'");
    CHECK_FALSE(pathExists(a.workspace() + "/ran"));

    // Sessionless calls do not create a session.
    auto list = get(a, "/api/session/list");
    for (const auto& id : list.body["data"]) CHECK(id != kNoSession);
}

TEST_CASE("execute: per-command cwd and env in a session") {
    AgentFixture a;
    const std::string s = "cwdenv";
    exec(a, "mkdir -p sub && export FOO=orig", s);

    // A cwd that does not exist: exit 1, message, command not run, shell cwd unchanged.
    json j = exec(a, "touch ran", s, {{"cwd", a.workspace() + "/nope"}});
    CHECK(j["exitCode"] == 1);
    CHECK(j["stdout"] == "");
    CHECK(j["stderr"] == "Failed to change directory to '" + a.workspace() + "/nope'");
    CHECK_FALSE(pathExists(a.workspace() + "/nope/ran"));
    CHECK_FALSE(pathExists(a.workspace() + "/ran"));
    CHECK(out(a, "pwd", s) == a.workspace());

    // A relative cwd is relative to the shell's directory; it is left afterwards.
    j = exec(a, "pwd", s, {{"cwd", "sub"}});
    CHECK(j["stdout"] == a.workspace() + "/sub");
    CHECK(out(a, "pwd", s) == a.workspace());
    // ... even when the command itself changes directory.
    exec(a, "cd /", s, {{"cwd", "/tmp"}});
    CHECK(out(a, "pwd", s) == a.workspace());

    // env overrides for one command, then the previous value (or absence) is restored;
    // null values are skipped; values are passed verbatim.
    j = exec(
        a, "echo \"$FOO|$NEWV|$Q\"", s,
        {{"env", {{"FOO", "tmp"}, {"NEWV", "n"}, {"SKIP", nullptr}, {"Q", "it's \"$HOME\""}}}});
    CHECK(j["stdout"] == "tmp|n|it's \"$HOME\"");
    CHECK(out(a, "echo \"$FOO|${NEWV-unset}|${SKIP-unset}\"", s) == "orig|unset|unset");
    // The restored variable is still exported.
    CHECK(out(a, "env | grep -c '^FOO=orig$'", s) == "1");
}

TEST_CASE("execute: a command that exits the shell terminates the session (410)") {
    AgentFixture a;
    const std::string s = "dies";
    exec(a, "export SBXT_STATE=old; cd /tmp", s);
    std::string pid1 = out(a, "echo $$", s);

    auto r = post(a, "/api/execute", {{"command", "exit 7"}, {"sessionId", s}});
    checkError(r, 410, "SESSION_TERMINATED");
    CHECK(r.body["context"]["sessionId"] == s);
    CHECK(r.body["context"]["exitCode"] == 7);

    // The next call transparently gets a fresh session.
    json j = exec(a, "echo \"[$SBXT_STATE]\"; pwd; echo $$", s);
    CHECK(j["exitCode"] == 0);
    std::string o = j["stdout"];
    CHECK(o.rfind("[]\n" + a.workspace() + "\n", 0) == 0);
    CHECK(o.substr(o.rfind('\n') + 1) != pid1);

    // A shell killed by a signal: 128 + signal.
    r = post(a, "/api/execute", {{"command", "kill -9 $$"}, {"sessionId", s}});
    checkError(r, 410, "SESSION_TERMINATED");
    CHECK(r.body["context"]["exitCode"] == 137);
    CHECK(out(a, "echo back", s) == "back");

    // The default session behaves the same.
    r = post(a, "/api/execute", {{"command", "exit 3"}});
    checkError(r, 410, "SESSION_TERMINATED");
    CHECK(r.body["context"]["sessionId"] == "default");
    CHECK(r.body["context"]["exitCode"] == 3);
    CHECK(out(a, "echo ok") == "ok");
}

TEST_CASE("execute: background:true starts a process") {
    AgentFixture a;
    auto r =
        post(a, "/api/execute", {{"command", "echo ran > bg-session.txt"}, {"background", true}});
    REQUIRE(r.status == 200);
    const json& j = r.body;
    CHECK(j["success"] == true);
    CHECK(std::regex_match(j.value("processId", ""), std::regex(R"(^proc_\d+_[0-9a-z]{6}$)")));
    CHECK(j["pid"].is_number_integer());
    CHECK(j["pid"].get<long>() > 0);
    CHECK(j["command"] == "echo ran > bg-session.txt");
    CHECK(isIsoTimestamp(j["timestamp"]));
    CHECK(waitFor([&] { return readFile(a.workspace() + "/bg-session.txt") == "ran\n"; }));

    // Sessionless too; ids are unique.
    auto r2 = post(
        a, "/api/execute",
        {{"command", "echo ran > bg-none.txt"}, {"background", true}, {"sessionId", kNoSession}});
    REQUIRE(r2.status == 200);
    CHECK(r2.body["processId"] != j["processId"]);
    CHECK(waitFor([&] { return readFile(a.workspace() + "/bg-none.txt") == "ran\n"; }));

    // The session is free while the background command runs.
    auto r3 =
        post(a, "/api/execute",
             {{"command", "while [ ! -e release ]; do sleep 0.01; done"}, {"background", true}});
    REQUIRE(r3.status == 200);
    CHECK(out(a, "touch release; echo free") == "free");
    CHECK(waitGone(r3.body["pid"].get<pid_t>()));

    // An empty background command is rejected.
    checkError(post(a, "/api/execute", {{"command", "  "}, {"background", true}}), 400,
               "INVALID_COMMAND");
}

TEST_CASE("execute: session-mode timeout kills the command tree; the session survives") {
    AgentFixture a;
    const std::string s = "slow";
    exec(a, "export KEEP=still-here", s);
    const std::string cmd =
        "bash -c 'sleep 1000 & echo $! > gc.pid; wait' & echo $! > child.pid; wait";
    auto r = post(a, "/api/execute", {{"command", cmd}, {"sessionId", s}, {"timeoutMs", 500}});
    checkError(r, 500, "COMMAND_EXECUTION_ERROR");
    CHECK(r.body["message"] == "Failed to execute command '" + cmd + "' in session '" + s +
                                   "': Command timeout after 500ms");
    CHECK(r.body["context"]["command"] == cmd);
    CHECK(r.body["context"]["stderr"] == "Command timeout after 500ms");

    // (our fix) the command and its grandchildren are really killed ...
    std::string gc = readFile(a.workspace() + "/gc.pid"),
                child = readFile(a.workspace() + "/child.pid");
    REQUIRE(!gc.empty());
    REQUIRE(!child.empty());
    CHECK(waitGone(toPid(gc)));
    CHECK(waitGone(toPid(child)));
    // ... and the session keeps working, with its state.
    CHECK(out(a, "echo $KEEP", s) == "still-here");

    // A busy loop in the shell itself cannot be interrupted: the shell is replaced.
    r = post(a, "/api/execute",
             {{"command", "while :; do :; done"}, {"sessionId", s}, {"timeoutMs", 300}});
    checkError(r, 500, "COMMAND_EXECUTION_ERROR");
    CHECK(r.body["context"]["stderr"] == "Command timeout after 300ms");
    CHECK(out(a, "echo works", s) == "works");
}

TEST_CASE("execute: sessionless timeout is exit 124 and kills the tree") {
    AgentFixture a;
    auto r = post(a, "/api/execute",
                  {{"command",
                    "echo partial; echo err >&2; bash -c 'sleep 1000 & echo $! > "
                    "gc.pid; wait'"},
                   {"sessionId", kNoSession},
                   {"timeoutMs", 500}});
    REQUIRE(r.status == 200);
    CHECK(r.body["exitCode"] == 124);
    CHECK(r.body["success"] == false);
    CHECK(r.body["stdout"] == "partial\n");
    std::string err = r.body["stderr"];
    CHECK(err == "err\nCommand timed out after 500ms");
    std::string gc = readFile(a.workspace() + "/gc.pid");
    REQUIRE(!gc.empty());
    CHECK(waitGone(toPid(gc)));

    // A command that ignores SIGTERM is killed after the grace period.
    r = post(a, "/api/execute",
             {{"command", "trap '' TERM; echo $$ > ignorer.pid; sleep 1000"},
              {"sessionId", kNoSession},
              {"timeoutMs", 300}});
    REQUIRE(r.status == 200);
    CHECK(r.body["exitCode"] == 124);
    CHECK(r.body["stderr"].get<std::string>().ends_with("Command timed out after 300ms"));
    std::string ig = readFile(a.workspace() + "/ignorer.pid");
    REQUIRE(!ig.empty());
    CHECK(waitGone(toPid(ig)));
}

TEST_CASE("execute: default timeouts: session create, first exec, COMMAND_TIMEOUT_MS") {
    AgentFixture a;
    // commandTimeoutMs from session create.
    REQUIRE(post(a, "/api/session/create", {{"id", "t1"}, {"commandTimeoutMs", 300}}).status ==
            200);
    auto r = post(a, "/api/execute", {{"command", "sleep 1000"}, {"sessionId", "t1"}});
    checkError(r, 500, "COMMAND_EXECUTION_ERROR");
    CHECK(r.body["context"]["stderr"] == "Command timeout after 300ms");
    // A request's timeoutMs wins over the session's.
    r = post(a, "/api/execute",
             {{"command", "sleep 1000"}, {"sessionId", "t1"}, {"timeoutMs", 200}});
    CHECK(r.body["context"]["stderr"] == "Command timeout after 200ms");
    CHECK(out(a, "echo fine", "t1") == "fine");

    // An implicit session takes the timeout of the exec that created it (§9.1).
    exec(a, "true", "t2", {{"timeoutMs", 250}});
    r = post(a, "/api/execute", {{"command", "sleep 1000"}, {"sessionId", "t2"}});
    CHECK(r.body["context"]["stderr"] == "Command timeout after 250ms");

    // COMMAND_TIMEOUT_MS is the server-wide default for session commands.
    sandbox::testing::TempDir dir;
    sandbox::testing::ServerProcess server(sandbox::testing::binPath("sandbox-agent"),
                                           {"--workspace", dir.path()}, {"COMMAND_TIMEOUT_MS=300"});
    auto http = server.connect();
    r = post(http, "/api/execute", {{"command", "sleep 1000"}});
    checkError(r, 500, "COMMAND_EXECUTION_ERROR");
    CHECK(r.body["context"]["stderr"] == "Command timeout after 300ms");
    CHECK(exec(http, "echo ok")["stdout"] == "ok");
}

TEST_CASE("execute: commands do not inherit the agent's sockets") {
    AgentFixture a;
    // Sessions and processes are spawned while a request is being served: neither the listening
    // socket nor that (or any) connection may leak into them.
    const std::string cmd = "ls -l /proc/self/fd/ | grep -c socket:";
    CHECK(exec(a, cmd)["stdout"] == "0");
    CHECK(exec(a, cmd, std::string("other"))["stdout"] == "0");
    CHECK(exec(a, cmd, kNoSession)["stdout"] == "0\n");
    auto s = stream(a.http, "/api/execute/stream", {{"command", cmd}, {"sessionId", kNoSession}});
    CHECK(s.joined("stdout") == "0\n");
    s = stream(a.http, "/api/execute/stream", {{"command", cmd}, {"sessionId", "third"}});
    CHECK(s.joined("stdout") == "0\n");
}

TEST_CASE("execute: output of a job left running never lands in a later command's result") {
    AgentFixture a;
    const std::string s = "jobs";
    // The job writes only after the next command has started (it waits for a file that command
    // creates) and before that command ends (the command waits for the job's marker file).
    exec(a,
         "(n=0; while [ ! -e go ] && [ $n -lt 2000 ]; do sleep 0.005; n=$((n+1)); done; "
         "echo late-out; echo late-err >&2; touch written; sleep 1000) & echo $! > job.pid",
         s);
    json j = exec(a,
                  "touch go; n=0; while [ ! -e written ] && [ $n -lt 2000 ]; do sleep 0.005; "
                  "n=$((n+1)); done; echo now",
                  s);
    CHECK(j["stdout"] == "now");
    CHECK(j["stderr"] == "");
    CHECK(pathExists(a.workspace() + "/written"));
    // The job was not disturbed by its output going nowhere (no EPIPE): it is still running,
    // and the session is still fine.
    pid_t job = toPid(readFile(a.workspace() + "/job.pid"));
    CHECK_FALSE(processGone(job));
    CHECK(out(a, "echo fine", s) == "fine");
    // Sessionless commands have their own pipes anyway.
    CHECK(exec(a, "echo mine", std::string("__DISABLE_SESSION__"))["stdout"] == "mine\n");
}
