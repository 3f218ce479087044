// exec(): the result fields, non-zero exits, per-command env and cwd, timeouts, the streaming
// variant with its callbacks, onError.
#include <ctime>
#include <regex>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

bool isIsoTimestamp(const std::string& s) {
    static const std::regex re(
        R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?)");
    return std::regex_match(s, re);
}

std::string utcNow(std::chrono::system_clock::time_point t) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return buf;
}

TEST_CASE("exec returns stdout, stderr, exit code and the result metadata") {
    INFO("mode ", modeName());
    auto sb = freshSandbox("exec");
    auto before = std::chrono::system_clock::now();
    auto r = sb.exec("echo hello; echo oops >&2; sleep 0.05");
    CHECK(r.stdoutText == inSession("hello\n"));
    CHECK(r.stderrText == inSession("oops\n"));
    CHECK(r.exitCode == 0);
    CHECK(r.success);
    CHECK(r.command == "echo hello; echo oops >&2; sleep 0.05");
    CHECK(r.duration >= 50ms);
    CHECK(r.duration < 30s);
    CHECK(isIsoTimestamp(r.timestamp));
    // The start time, in UTC (compared to the second).
    CHECK(r.timestamp.substr(0, 19) >= utcNow(before).substr(0, 19));
    CHECK(r.timestamp.substr(0, 19) <= utcNow(std::chrono::system_clock::now()).substr(0, 19));
    if (hasDefaultSession()) {
        REQUIRE(r.sessionId);
        CHECK(*r.sessionId == "sandbox-" + sb.id());
    } else {
        CHECK_FALSE(r.sessionId);  // the narrow bridge runs session-less unless a session is named
    }
}

TEST_CASE("a non-zero exit is a result, not an exception") {
    auto r = shared().exec("echo partial; bash -c 'exit 7'");
    CHECK(r.exitCode == 7);
    CHECK_FALSE(r.success);
    CHECK(r.stdoutText == inSession("partial\n"));
    auto f = shared().exec("false");
    CHECK(f.exitCode == 1);
    CHECK_FALSE(f.success);
    auto nf = shared().exec("no-such-command-xyz");
    CHECK(nf.exitCode == 127);
    CHECK(nf.stderrText.find("not found") != std::string::npos);
}

TEST_CASE("shell state persists in the default session (sessionless on the narrow bridge)") {
    auto sb = freshSandbox("state");
    sb.exec("export PERSIST=yes; cd /tmp");
    auto r = sb.exec("echo ${PERSIST-unset}; pwd");
    if (hasDefaultSession())
        CHECK(r.stdoutText == inSession("yes\n/tmp\n"));
    else
        CHECK(r.stdoutText == inSession("unset\n/workspace\n"));
    // Commands start in the workspace.
    auto fresh = freshSandbox("cwd");
    CHECK(fresh.exec("pwd").stdoutText == inSession(ws() + "\n"));
}

TEST_CASE("enableDefaultSession = false runs every command in a fresh shell") {
    auto sb = getSandbox(client(), uniqueName("nosess"), {.enableDefaultSession = false});
    sb.exec("export GONE=1; cd /tmp");
    auto r = sb.exec("echo ${GONE-unset}; pwd");
    CHECK(r.stdoutText == "unset\n" + ws() + "\n");
    CHECK_FALSE(r.sessionId);
}

TEST_CASE("env applies to one command and does not persist; a nullopt value unsets") {
    auto sb = freshSandbox("env");
    auto r =
        sb.exec("echo \"$GREETING $WHO\"", {.env = {{"GREETING", "hello"}, {"WHO", "a b'c\"$x"}}});
    CHECK(r.stdoutText == inSession("hello a b'c\"$x\n"));
    CHECK(sb.exec("echo ${GREETING-unset}").stdoutText == inSession("unset\n"));
    // As the TypeScript SDK's undefined: a nullopt value is dropped, the variable keeps its value.
    std::string home = sb.exec("echo ${HOME-unset}").stdoutText;
    REQUIRE(home != inSession("unset\n"));
    CHECK(sb.exec("echo ${HOME-unset}; echo $V", {.env = {{"HOME", std::nullopt}, {"V", "v"}}})
              .stdoutText == inSession(home + "\n" + "v\n"));
}

TEST_CASE("cwd applies to one command") {
    std::string d = freshDir("cwd");
    auto sb = shared();
    auto r = sb.exec("pwd", {.cwd = d});
    CHECK(r.stdoutText == inSession(d + "\n"));
    CHECK(sb.exec("pwd").stdoutText == inSession(ws() + "\n"));
    if (isNarrow()) {
        // The bridge reports a command that cannot start as an error frame.
        try {
            sb.exec("pwd", {.cwd = ws() + "/no/such/dir"});
            FAIL("no exception");
        } catch (const CommandError& e) {
            CHECK(e.code() == "exec_error");
            CHECK(std::string(e.what()).find("Failed to change directory") != std::string::npos);
        }
    } else {
        // In a session the shell's cd fails: a result.
        auto bad = sb.exec("pwd", {.cwd = ws() + "/no/such/dir"});
        CHECK(bad.exitCode != 0);
        CHECK_FALSE(bad.success);
        CHECK(bad.stderrText.find("Failed to change directory") != std::string::npos);
    }
}

TEST_CASE("a timeout stops the command: CommandTimeoutError in a session, session-less, streamed") {
    // One behaviour on every transport and in every mode (the container API itself answers a
    // session's timeout with a 500 and a session-less one with exit code 124).
    // `partial`: the output so far the error must hold, where the transport keeps it.
    auto expectTimeout = [](const Sandbox& sb, const ExecOptions& o,
                            std::optional<std::string> partial) {
        auto start = std::chrono::steady_clock::now();
        try {
            sb.exec("echo started; sleep 20", o);
            FAIL("no exception");
        } catch (const CommandTimeoutError& e) {
            CHECK(e.code() == "COMMAND_EXECUTION_ERROR");
            CHECK(e.httpStatus() == 500);
            CHECK(std::string(e.what()).find("Command timeout after 300ms") != std::string::npos);
            CHECK(e.context().value("timeoutMs", 0) == 300);
            CHECK(e.contextString("command") == "echo started; sleep 20");
            if (partial) CHECK(e.contextString("stdout") == *partial);
        }
        CHECK(std::chrono::steady_clock::now() - start < 10s);
    };
    auto sb = freshSandbox("timeout");
    // (A container session does not keep the output of a command it gave up on; Cloudflare's
    // bridge streams it, rebuilt by the session rule.)
    expectTimeout(sb, {.timeout = 300ms},
                  hasDefaultSession() ? std::nullopt : std::optional(inSession("started\n")));
    // The sandbox (and its default session) keep working.
    CHECK(sb.exec("echo after").stdoutText == inSession("after\n"));
    // Also a CommandError, for code written against the reference's classes.
    CHECK_THROWS_AS(sb.exec("sleep 20", {.timeout = 300ms}), CommandError);
    // Streamed to a callback.
    expectTimeout(sb, {.timeout = 300ms, .stream = true, .onOutput = [](auto&, auto&) {}},
                  "started\n");
    // Session-less.
    auto nos = getSandbox(client(), uniqueName("timeout-nos"), {.enableDefaultSession = false});
    expectTimeout(nos, {.timeout = 300ms}, "started\n");
    // A command that exits 124 by itself before its timeout is a result.
    auto own = nos.exec("echo 'Command timed out after 1ms' >&2; exit 124", {.timeout = 20s});
    CHECK(own.exitCode == 124);
    // execStream is a stream of events: it ends with exit code 124 and the timeout line.
    std::string err;
    std::optional<int> code;
    for (auto& ev : sb.execStream("sleep 20", {.timeout = 300ms})) {
        if (ev.type == ExecEvent::Type::Stderr) err += ev.data;
        if (ev.type == ExecEvent::Type::Complete) code = ev.exitCode;
    }
    CHECK(code == 124);
    CHECK(err.find("Command timed out after 300ms") != std::string::npos);
}

TEST_CASE("text that is not UTF-8 in a command or path is a ValidationFailedError") {
    const auto& sb = shared();
    // Never the JSON library's own exception: only the SDK's errors leave a public call.
    CHECK_THROWS_AS(sb.exec("echo caf\xe9"), ValidationFailedError);
    CHECK_THROWS_AS(sb.execStream("echo caf\xe9"), ValidationFailedError);
    CHECK_THROWS_AS(sb.exec("true", {.env = {{"V", "caf\xe9"}}}), ValidationFailedError);
    CHECK_THROWS_AS(sb.mkdir(ws() + "/caf\xe9"), SandboxError);
    CHECK(sb.exec("echo ok").stdoutText == inSession("ok\n"));
}

TEST_CASE("stream = true delivers output through onOutput and still returns the full result") {
    auto sb = freshSandbox("cb");
    std::string out, err;
    std::vector<std::string> order;
    int completions = 0;
    ExecResult completed;
    auto r = sb.exec("for i in 1 2 3; do echo line$i; done; echo warn >&2; bash -c 'exit 3'",
                     {.stream = true,
                      .onOutput =
                          [&](const std::string& stream, const std::string& data) {
                              order.push_back(stream);
                              (stream == "stdout" ? out : err) += data;
                          },
                      .onComplete =
                          [&](const ExecResult& res) {
                              ++completions;
                              completed = res;
                          }});
    CHECK(out == "line1\nline2\nline3\n");
    CHECK(err == "warn\n");
    CHECK(r.stdoutText == out);
    CHECK(r.stderrText == err);
    CHECK(r.exitCode == 3);
    CHECK_FALSE(r.success);
    CHECK(completions == 1);
    CHECK(completed.stdoutText == r.stdoutText);
    CHECK(completed.exitCode == 3);
    CHECK(completed.command == r.command);
    CHECK(r.sessionId ==
          (hasDefaultSession() ? std::optional<std::string>("sandbox-" + sb.id()) : std::nullopt));
    for (const auto& s : order) CHECK((s == "stdout" || s == "stderr"));

    // onComplete also runs without streaming; stream without onOutput is a plain exec.
    int plain = 0;
    auto p = sb.exec("echo x", {.stream = true, .onComplete = [&](const ExecResult&) { ++plain; }});
    CHECK(p.stdoutText == inSession("x\n"));
    CHECK(plain == 1);
}

TEST_CASE("onError is called with the error before it is thrown") {
    auto sb = freshSandbox("onerr");
    for (bool stream : {false, true}) {
        INFO("stream ", stream);
        bool called = false, completed = false;
        std::string seen;
        bool thrown = false;
        try {
            // A NUL byte in the command is refused by the container (and so by the bridge).
            sb.exec(std::string("echo a\0b", 8),
                    {.stream = stream,
                     .onOutput = [](const std::string&, const std::string&) {},
                     .onComplete = [&](const ExecResult&) { completed = true; },
                     .onError =
                         [&](const std::exception& e) {
                             CHECK_FALSE(thrown);
                             called = true;
                             seen = e.what();
                         }});
        } catch (const SandboxError& e) {
            thrown = true;
            CHECK(called);
            CHECK(seen == e.what());
            CHECK(dynamic_cast<const TransportError*>(&e) == nullptr);
        }
        CHECK(thrown);
        CHECK_FALSE(completed);
    }
    // A transport failure goes through onError too.
    ClientOptions o = clientOptions();
    o.retryBudget = 0ms;
    (isAgent() ? o.agentUrl : o.apiUrl) = "http://127.0.0.1:" + std::to_string(closedPort());
    if (mode() == Mode::Embedded) o.apiUrl = "http://127.0.0.1:" + std::to_string(closedPort());
    auto dead = getSandbox(Client(o), "dead");
    bool called = false;
    CHECK_THROWS_AS(dead.exec("true", {.onError = [&](const std::exception&) { called = true; }}),
                    ConnectionError);
    CHECK(called);
}

TEST_CASE("binary-ish and large output survives exec") {
    auto sb = shared();
    auto r = sb.exec("printf 'caf\\xc3\\xa9 \\xe2\\x9c\\x93\\n'");
    CHECK(r.stdoutText == inSession("caf\xc3\xa9 \xe2\x9c\x93\n"));
    auto big = sb.exec("head -c 1000000 /dev/zero | tr '\\0' 'x'; echo");
    CHECK(big.stdoutText.size() == inSession(std::string(1000000, 'x') + "\n").size());
    CHECK(big.stdoutText.find_first_not_of('x') == std::string::npos);
}

}  // namespace
}  // namespace sandbox::testing::sdk
