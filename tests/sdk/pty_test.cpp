// Sandbox::terminal() over every transport: the agent's /ws/pty, sandboxd's /pty (bridge,
// narrow bridge, embedded default). Output as a pull range and as a callback, resize, exit
// codes, replay on reconnect, session binding, auth.
#include <atomic>
#include <mutex>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

// Reads output until it contains `needle` (bounded).
bool readUntil(Pty& pty, std::string& seen, const std::string& needle,
               std::chrono::milliseconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (seen.find(needle) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        std::optional<std::string> chunk;
        try {
            chunk = pty.read(left);
        } catch (const TimeoutError&) {
            return false;
        }
        if (!chunk) return false;
        seen += *chunk;
    }
    return true;
}

TEST_CASE("terminal: size, resize, and the exit code") {
    auto sb = freshSandbox("pty");
    auto pty = sb.terminal({.cols = 100, .rows = 30});
    std::string out;
    pty.write("stty size; echo ok-$((2+3))\n");
    CHECK(readUntil(pty, out, "30 100"));
    CHECK(readUntil(pty, out, "ok-5"));
    pty.resize(140, 45);
    pty.write("stty size\n");
    CHECK(readUntil(pty, out, "45 140"));
    CHECK_THROWS_AS(pty.resize(0, 10), ValidationFailedError);
    pty.write("exit 3\n");
    CHECK(pty.wait(30s) == std::optional<int>(3));
    CHECK(pty.exitCode() == std::optional<int>(3));
    CHECK(pty.ended());
    CHECK_FALSE(pty.read().has_value());
    CHECK_THROWS_AS(pty.write("x"), StreamLostError);
}

TEST_CASE("terminal: output as a pull range and as a callback; replay on reconnect") {
    auto sb = freshSandbox("pty");
    {
        auto pty = sb.terminal();
        pty.write("echo range-$((4*4)); exit 0\n");
        std::string all;
        for (const std::string& chunk : pty) all += chunk;
        CHECK(all.find("range-16") != std::string::npos);
        CHECK(pty.exitCode() == std::optional<int>(0));
    }
    auto s = isNarrow() ? sb.getSession("pty-cb") : sb.createSession({.id = "pty-cb"});
    {
        auto pty = s.terminal();
        CHECK(pty.sessionId() == "pty-cb");
        std::mutex m;
        std::string seen;
        pty.onOutput([&](std::string_view chunk) {
            std::lock_guard lock(m);
            seen.append(chunk);
        });
        pty.write("echo callback-$((9+9))-marker\n");
        CHECK(eventually(
            [&] {
                std::lock_guard lock(m);
                return seen.find("callback-18-marker") != std::string::npos;
            },
            30s));
    }  // disconnected; the shell keeps running
    auto again = s.terminal();
    std::string out;
    CHECK(readUntil(again, out, "callback-18-marker"));  // replayed
    again.write("echo $$ > /dev/null; exit 4\n");
    CHECK(again.wait(30s) == std::optional<int>(4));
}

TEST_CASE("terminal: bad options and auth") {
    auto sb = freshSandbox("pty");
    CHECK_THROWS_AS(sb.terminal({.cols = 0}), ValidationFailedError);
    if (!isTcpBridge()) return;
    ClientOptions o = clientOptions();
    o.apiKey = "wrong";
    auto bad = getSandbox(Client(o), uniqueName("ptykey"));
    try {
        bad.terminal();
        FAIL("no exception");
    } catch (const AuthenticationError& e) {
        CHECK(e.httpStatus() == 401);
    }
}

}  // namespace
}  // namespace sandbox::testing::sdk
