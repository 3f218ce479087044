// POST /api/execute/stream (§3.2, §4): SSE framing, event shapes, session-mode line events,
// sessionless raw chunks, exit codes, pre-stream errors, and what a client disconnect does.
#include <doctest/doctest.h>
#include <algorithm>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "agent/agent_test_util.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using namespace sandbox::testing::agent;

namespace {
const std::string kNoSession = "__DISABLE_SESSION__";

SseReply execStream(AgentFixture& a, const std::string& command,
                    const std::optional<std::string>& sessionId = std::nullopt,
                    json extra = json::object()) {
    extra["command"] = command;
    if (sessionId) extra["sessionId"] = *sessionId;
    return stream(a.http, "/api/execute/stream", extra);
}

std::vector<std::string> dataOf(const SseReply& r, std::string_view type) {
    std::vector<std::string> out;
    for (const auto& e : r.ofType(type)) out.push_back(e.value("data", ""));
    return out;
}

std::optional<int> exitCodeOf(const SseReply& r) {
    auto c = r.ofType("complete");
    if (c.size() != 1 || !c[0].contains("exitCode")) return std::nullopt;
    return c[0]["exitCode"].get<int>();
}
}  // namespace

TEST_CASE("execute/stream: SSE framing and event shapes") {
    AgentFixture a;
    const std::string cmd = "echo one; echo two >&2; printf partial";
    auto r = execStream(a, cmd);
    REQUIRE(r.status == 200);
    CHECK(r.contentType == "text/event-stream");
    CHECK(r.cacheControl == "no-cache");

    // The body is nothing but `data: <single-line json>\n\n` blocks.
    std::string_view rest = r.raw;
    int blocks = 0;
    while (!rest.empty()) {
        REQUIRE(rest.rfind("data: ", 0) == 0);
        auto end = rest.find("\n\n");
        REQUIRE(end != std::string_view::npos);
        std::string_view payload = rest.substr(6, end - 6);
        CHECK(payload.find('\n') == std::string_view::npos);
        CHECK_FALSE(json::parse(payload, nullptr, false).is_discarded());
        rest.remove_prefix(end + 2);
        ++blocks;
    }
    CHECK(blocks == static_cast<int>(r.events.size()));

    REQUIRE(r.events.size() == 5);
    // stdout and stderr are two pipes: each stream keeps its order (checked below), but
    // which of them the agent reads first is the scheduler's choice.
    auto types = r.types();
    CHECK(types.front() == "start");
    CHECK(types.back() == "complete");
    std::vector<std::string> middle(types.begin() + 1, types.end() - 1);
    std::sort(middle.begin(), middle.end());
    CHECK(middle == std::vector<std::string>{"stderr", "stdout", "stdout"});
    const json& start = r.events[0];
    CHECK(start["command"] == cmd);
    CHECK(isIsoTimestamp(start["timestamp"]));
    CHECK_FALSE(start.contains("pid"));
    CHECK(start.size() == 3);
    for (int i = 1; i <= 3; ++i) {
        CHECK(r.events[i]["data"].is_string());
        CHECK(isIsoTimestamp(r.events[i]["timestamp"]));
        CHECK(r.events[i].size() == 3);
    }
    CHECK(dataOf(r, "stdout") == std::vector<std::string>{"one\n", "partial\n"});
    CHECK(dataOf(r, "stderr") == std::vector<std::string>{"two\n"});
    const json& complete = r.events.back();
    CHECK(complete["exitCode"] == 0);
    CHECK(isIsoTimestamp(complete["timestamp"]));
    CHECK(complete.size() == 3);

    // The connection stays usable after a stream.
    CHECK(out(a, "echo after") == "after");
}

TEST_CASE("execute/stream: session mode emits one event per line") {
    AgentFixture a;
    auto r = execStream(a, "printf 'a\\nb\\n\\nc'; printf 'e1\\ne2\\n' >&2");
    CHECK(dataOf(r, "stdout") == std::vector<std::string>{"a\n", "b\n", "\n", "c\n"});
    CHECK(dataOf(r, "stderr") == std::vector<std::string>{"e1\n", "e2\n"});
    CHECK(exitCodeOf(r) == 0);

    // Many lines, in order, none lost.
    r = execStream(a, "seq 1 20000");
    auto lines = dataOf(r, "stdout");
    REQUIRE(lines.size() == 20000);
    bool inOrder = true;
    for (int i = 0; i < 20000; ++i) inOrder = inOrder && lines[i] == std::to_string(i + 1) + "\n";
    CHECK(inOrder);
    CHECK(r.events.back()["type"] == "complete");

    // A line longer than any pipe buffer is still one event.
    r = execStream(a, "head -c 300000 /dev/zero | tr '\\0' y; echo");
    CHECK(dataOf(r, "stdout") == std::vector<std::string>{std::string(300000, 'y') + "\n"});

    // Invalid UTF-8 is repaired; NUL bytes survive as JSON escapes.
    r = execStream(a, "printf 'bad\\377\\n'");
    CHECK(dataOf(r, "stdout") == std::vector<std::string>{"bad\xEF\xBF\xBD\n"});
    // No output at all: start and complete only.
    r = execStream(a, "true");
    CHECK(r.types() == std::vector<std::string>{"start", "complete"});
}

TEST_CASE("execute/stream: session state is visible but not changed") {
    AgentFixture a;
    exec(a, "export SV=from-session; mkdir -p sub; cd sub", std::string("st"));
    auto r = execStream(a, "echo $SV; pwd; export SV=changed; cd /", std::string("st"));
    CHECK(r.joined("stdout") == "from-session\n" + a.workspace() + "/sub\n");
    CHECK(exitCodeOf(r) == 0);
    // The stream ran in a subshell: nothing leaked back.
    CHECK(out(a, "echo $SV; pwd", "st") == "from-session\n" + a.workspace() + "/sub");
    // `exit` ends only the streamed command.
    r = execStream(a, "echo bye; exit 3", std::string("st"));
    CHECK(exitCodeOf(r) == 3);
    CHECK(out(a, "echo $SV", "st") == "from-session");

    // Per-command env and cwd.
    r = execStream(a, "echo $E; pwd", std::string("st"), {{"env", {{"E", "e!"}}}, {"cwd", "/tmp"}});
    CHECK(r.joined("stdout") == "e!\n/tmp\n");
    r = execStream(a, "touch ran", std::string("st"), {{"cwd", "/nonexistent"}});
    CHECK(exitCodeOf(r) == 1);
    CHECK(r.joined("stderr") == "Failed to change directory to '/nonexistent'\n");
    CHECK_FALSE(pathExists("/nonexistent/ran"));
}

TEST_CASE("execute/stream: sessionless mode streams raw chunks") {
    AgentFixture a;
    auto r = execStream(a, "echo one; echo two >&2; printf partial", kNoSession);
    REQUIRE(r.status == 200);
    CHECK(r.events.front()["type"] == "start");
    CHECK(r.events.back()["type"] == "complete");
    CHECK(r.joined("stdout") == "one\npartial");  // no newline added
    CHECK(r.joined("stderr") == "two\n");
    CHECK(exitCodeOf(r) == 0);

    // Large output: the concatenation is exact; multibyte characters are never split.
    r = execStream(a, "for i in $(seq 1 30000); do printf 'é%05d' $i; done", kNoSession);
    std::string expected;
    for (int i = 1; i <= 30000; ++i) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "\xC3\xA9%05d", i);
        expected += buf;
    }
    CHECK(r.joined("stdout") == expected);
    CHECK(r.joined("stdout").find("\xEF\xBF\xBD") == std::string::npos);

    // Workspace is the default cwd; env applies.
    r = execStream(a, "pwd; echo $V", kNoSession, {{"env", {{"V", "v"}}}});
    CHECK(r.joined("stdout") == a.workspace() + "\nv\n");
}

TEST_CASE("execute/stream: exit codes") {
    AgentFixture a;
    for (const auto& mode :
         {std::optional<std::string>(), std::optional<std::string>(kNoSession)}) {
        CAPTURE(mode.value_or("session"));
        CHECK(exitCodeOf(execStream(a, "true", mode)) == 0);
        CHECK(exitCodeOf(execStream(a, "false", mode)) == 1);
        CHECK(exitCodeOf(execStream(a, "(exit 42)", mode)) == 42);
        auto r = execStream(a, "nosuchcommand_xyz", mode);
        CHECK(exitCodeOf(r) == 127);
        CHECK(r.joined("stderr").find("command not found") != std::string::npos);
        // Exactly one terminal event, last.
        CHECK(r.ofType("complete").size() == 1);
        CHECK(r.events.back()["type"] == "complete");
    }
}

TEST_CASE("execute/stream: timeoutMs stops the command (the reference ignores it)") {
    AgentFixture a;
    for (const auto& mode :
         {std::optional<std::string>(), std::optional<std::string>(kNoSession)}) {
        CAPTURE(mode.value_or("session"));
        auto r = execStream(a, "echo started; sleep 20; echo done", mode, {{"timeoutMs", 300}});
        CHECK(r.joined("stdout") == "started\n");
        CHECK(r.ofType("stderr").back()["data"] == "Command timed out after 300ms\n");
        CHECK(exitCodeOf(r) == 124);
        CHECK(r.events.back()["type"] == "complete");
        // Within its limit a command runs to the end.
        auto ok = execStream(a, "sleep 0.1; echo done", mode, {{"timeoutMs", 20000}});
        CHECK(ok.joined("stdout") == "done\n");
        CHECK(exitCodeOf(ok) == 0);
    }
}

TEST_CASE("execute/stream: pre-stream errors are JSON, not SSE") {
    AgentFixture a;
    auto asReply = [](const SseReply& s) {
        Reply r;
        r.status = s.status;
        r.contentType = s.contentType;
        r.raw = s.raw;
        r.body = json::parse(s.raw, nullptr, false);
        return r;
    };
    for (const char* cmd : {"", "   ", "\n\t"}) {
        CAPTURE(cmd);
        auto r = asReply(stream(a.http, "/api/execute/stream", {{"command", cmd}}));
        checkError(r, 400, "INVALID_COMMAND");
        CHECK(r.body["message"] == "Invalid command: empty command provided");
    }
    checkValidation(asReply(stream(a.http, "/api/execute/stream", json::object())), "REQUIRED");
    checkValidation(asReply(stream(a.http, "/api/execute/stream", {{"command", 7}})),
                    "INVALID_TYPE");
    checkValidation(asReply(stream(a.http, "/api/execute/stream",
                                   {{"command", "x"}, {"env", {{"1BAD", "v"}}}})),
                    "INVALID_ENV_NAME");
    checkValidation(
        asReply(stream(a.http, "/api/execute/stream", {{"command", "x"}, {"env", {{"A", true}}}})),
        "INVALID_TYPE");
    auto raw = asReply([&] {
        SseReply s;
        auto r = a.http.request("POST", "/api/execute/stream", "{nope");
        s.status = r.status;
        s.contentType = r.header("content-type").value_or("");
        s.raw = r.body;
        return s;
    }());
    checkValidation(raw, "INVALID_JSON");
    // The connection still works.
    CHECK(exitCodeOf(execStream(a, "true")) == 0);
}

TEST_CASE("execute/stream: a client that disconnects takes its command with it") {
    AgentFixture a;
    for (const auto& mode :
         {std::optional<std::string>("dc"), std::optional<std::string>(kNoSession)}) {
        CAPTURE(mode.value_or("default"));
        auto c = a.server.connect();
        json body = {{"command", "sh -c 'echo $$; exec sleep 1000'"}};
        if (mode) body["sessionId"] = *mode;
        std::string pidText;
        auto r = stream(c, "/api/execute/stream", body, {}, [&](const json& e) {
            if (e.value("type", "") != "stdout") return true;
            pidText += e.value("data", "");
            return pidText.find('\n') == std::string::npos;  // got the pid: hang up
        });
        CHECK(r.status == 200);
        CHECK(r.ofType("complete").empty());
        REQUIRE(!pidText.empty());
        pid_t pid = toPid(pidText);
        CHECK(waitGone(pid));
    }
    // The session the stream ran in is free again.
    CHECK(out(a, "echo free", "dc") == "free");
}

TEST_CASE("execute/stream: a stream holds its session; other sessions run meanwhile") {
    AgentFixture a;
    SseReply streamed;
    std::thread t([&] {
        auto c = a.server.connect();
        streamed = stream(c, "/api/execute/stream",
                          {{"command",
                            "touch stream-started; n=0; while [ ! -e go ] && [ $n -lt 2000 ]; do "
                            "sleep 0.005; n=$((n+1)); done; echo done-waiting"},
                           {"sessionId", "holder"}});
    });
    bool started = waitFor([&] { return pathExists(a.workspace() + "/stream-started"); });
    // Another session is not blocked by it; it releases the stream.
    json j = exec(a, "touch go; echo other", std::string("other"));
    t.join();
    REQUIRE(started);
    CHECK(j["stdout"] == "other");
    CHECK(streamed.joined("stdout") == "done-waiting\n");
    CHECK(exitCodeOf(streamed) == 0);
    CHECK(out(a, "echo next", "holder") == "next");

    // A command on the stream's own session waits for the stream (as the reference: a
    // foreground stream holds the session lock). The stream gives up waiting for `go2` after
    // ~1 s; the queued command creates it only afterwards.
    std::thread t2([&] {
        auto c = a.server.connect();
        streamed =
            stream(c, "/api/execute/stream",
                   {{"command",
                     "touch stream2-started; n=0; while [ ! -e go2 ] && [ $n -lt 100 ]; do "
                     "sleep 0.01; n=$((n+1)); done; [ -e go2 ] && echo saw-go || echo no-go"},
                    {"sessionId", "holder"}});
    });
    started = waitFor([&] { return pathExists(a.workspace() + "/stream2-started"); });
    j = exec(a, "touch go2; echo queued", std::string("holder"));
    t2.join();
    REQUIRE(started);
    CHECK(j["stdout"] == "queued");
    CHECK(streamed.joined("stdout") == "no-go\n");
}
