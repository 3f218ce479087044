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
    CHECK(r.stdout == inSession("hello\n"));
    CHECK(r.stderr == inSession("oops\n"));
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
    CHECK(r.stdout == inSession("partial\n"));
    auto f = shared().exec("false");
    CHECK(f.exitCode == 1);
    CHECK_FALSE(f.success);
    auto nf = shared().exec("no-such-command-xyz");
    CHECK(nf.exitCode == 127);
    CHECK(nf.stderr.find("not found") != std::string::npos);
}

TEST_CASE("shell state persists in the default session (sessionless on the narrow bridge)") {
    auto sb = freshSandbox("state");
    sb.exec("export PERSIST=yes; cd /tmp");
    auto r = sb.exec("echo ${PERSIST-unset}; pwd");
    if (hasDefaultSession())
        CHECK(r.stdout == inSession("yes\n/tmp\n"));
    else
        CHECK(r.stdout == inSession("unset\n/workspace\n"));
    // Commands start in the workspace.
    auto fresh = freshSandbox("cwd");
    CHECK(fresh.exec("pwd").stdout == inSession(ws() + "\n"));
}

TEST_CASE("enableDefaultSession = false runs every command in a fresh shell") {
    auto sb = getSandbox(client(), uniqueName("nosess"), {.enableDefaultSession = false});
    sb.exec("export GONE=1; cd /tmp");
    auto r = sb.exec("echo ${GONE-unset}; pwd");
    CHECK(r.stdout == "unset\n" + ws() + "\n");
    CHECK_FALSE(r.sessionId);
}

TEST_CASE("env applies to one command and does not persist; a nullopt value unsets") {
    auto sb = freshSandbox("env");
    auto r =
        sb.exec("echo \"$GREETING $WHO\"", {.env = {{"GREETING", "hello"}, {"WHO", "a b'c\"$x"}}});
    CHECK(r.stdout == inSession("hello a b'c\"$x\n"));
    CHECK(sb.exec("echo ${GREETING-unset}").stdout == inSession("unset\n"));
    // As the TypeScript SDK's undefined: a nullopt value is dropped, the variable keeps its value.
    std::string home = sb.exec("echo ${HOME-unset}").stdout;
    REQUIRE(home != inSession("unset\n"));
    CHECK(sb.exec("echo ${HOME-unset}; echo $V", {.env = {{"HOME", std::nullopt}, {"V", "v"}}})
              .stdout == inSession(home + "\n" + "v\n"));
}

TEST_CASE("cwd applies to one command") {
    std::string d = freshDir("cwd");
    auto sb = shared();
    auto r = sb.exec("pwd", {.cwd = d});
    CHECK(r.stdout == inSession(d + "\n"));
    CHECK(sb.exec("pwd").stdout == inSession(ws() + "\n"));
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
        CHECK(bad.stderr.find("Failed to change directory") != std::string::npos);
    }
}

TEST_CASE("a timeout stops the command: CommandError in a session, exit 124 session-less") {
    auto sb = freshSandbox("timeout");
    auto start = std::chrono::steady_clock::now();
    if (hasDefaultSession()) {
        // The container's session mode reports a timeout as COMMAND_EXECUTION_ERROR (500).
        try {
            sb.exec("sleep 20", {.timeout = 300ms});
            FAIL("no exception");
        } catch (const CommandError& e) {
            CHECK(e.code() == "COMMAND_EXECUTION_ERROR");
            CHECK(e.httpStatus() == 500);
            CHECK(std::string(e.what()).find("timeout") != std::string::npos);
        }
    } else {
        // The bridge reports it as exit status 124 with a message on stderr.
        auto r = sb.exec("sleep 20", {.timeout = 300ms});
        CHECK(r.exitCode == 124);
        CHECK(r.stderr.find("Command timed out after 300ms") != std::string::npos);
    }
    CHECK(std::chrono::steady_clock::now() - start < 10s);
    // The sandbox (and its default session) keep working.
    CHECK(sb.exec("echo after").stdout == inSession("after\n"));

    // Session-less commands report the timeout as exit status 124 on every transport.
    auto nos = getSandbox(client(), uniqueName("timeout-nos"), {.enableDefaultSession = false});
    auto r = nos.exec("echo started; sleep 20", {.timeout = 300ms});
    CHECK(r.exitCode == 124);
    CHECK_FALSE(r.success);
    CHECK(r.stdout == "started\n");
    CHECK(r.stderr.find("timed out") != std::string::npos);
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
    CHECK(r.stdout == out);
    CHECK(r.stderr == err);
    CHECK(r.exitCode == 3);
    CHECK_FALSE(r.success);
    CHECK(completions == 1);
    CHECK(completed.stdout == r.stdout);
    CHECK(completed.exitCode == 3);
    CHECK(completed.command == r.command);
    CHECK(r.sessionId ==
          (hasDefaultSession() ? std::optional<std::string>("sandbox-" + sb.id()) : std::nullopt));
    for (const auto& s : order) CHECK((s == "stdout" || s == "stderr"));

    // onComplete also runs without streaming; stream without onOutput is a plain exec.
    int plain = 0;
    auto p = sb.exec("echo x", {.stream = true, .onComplete = [&](const ExecResult&) { ++plain; }});
    CHECK(p.stdout == inSession("x\n"));
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
    CHECK(r.stdout == inSession("caf\xc3\xa9 \xe2\x9c\x93\n"));
    auto big = sb.exec("head -c 1000000 /dev/zero | tr '\\0' 'x'; echo");
    CHECK(big.stdout.size() == inSession(std::string(1000000, 'x') + "\n").size());
    CHECK(big.stdout.find_first_not_of('x') == std::string::npos);
}

}  // namespace
}  // namespace sandbox::testing::sdk
