// execStream(): the events, cancellation by destroying the stream, streams that end without a
// terminal event, and a server that dies mid-stream.
#include <unistd.h>

#include "core/base64.hpp"
#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

using Type = ExecEvent::Type;

// Reads events until one of `type` whose data contains `text`; false if the stream ends first.
bool readUntil(ExecStream& s, Type type, const std::string& text) {
    while (auto ev = s.next())
        if (ev->type == type && ev->data.find(text) != std::string::npos) return true;
    return false;
}

TEST_CASE("execStream yields start, stdout, stderr and complete, then ends") {
    auto sb = freshSandbox("stream");
    const std::string cmd = "echo out1; echo err1 >&2; echo out2; bash -c 'exit 5'";
    auto s = sb.execStream(cmd);
    std::vector<ExecEvent> evs;
    while (auto ev = s.next()) evs.push_back(*ev);
    REQUIRE(evs.size() >= 4);
    CHECK(evs.front().type == Type::Start);
    CHECK(evs.front().command == cmd);
    CHECK_FALSE(evs.front().timestamp.empty());
    std::string out, err;
    for (std::size_t i = 1; i + 1 < evs.size(); ++i) {
        INFO("event ", i);
        REQUIRE((evs[i].type == Type::Stdout || evs[i].type == Type::Stderr));
        (evs[i].type == Type::Stdout ? out : err) += evs[i].data;
    }
    CHECK(out == "out1\nout2\n");
    CHECK(err == "err1\n");
    CHECK(evs.back().type == Type::Complete);
    CHECK(evs.back().exitCode == 5);
    CHECK_FALSE(s.next());  // stays ended

    // Range-for over the same kind of stream; env and cwd apply as for exec.
    std::string d = ws() + "/" + uniqueName("stream");
    sb.mkdir(d);
    std::string seen;
    std::optional<int> code;
    for (auto& ev : sb.execStream("pwd; echo $V", {.cwd = d, .env = {{"V", "streamed"}}})) {
        if (ev.type == Type::Stdout) seen += ev.data;
        if (ev.type == Type::Complete) code = ev.exitCode;
    }
    CHECK(seen == d + "\nstreamed\n");
    CHECK(code == 0);
}

TEST_CASE("execStream delivers output as it happens") {
    auto sb = freshSandbox("live");
    // The command waits for a file the test creates only after seeing the first line.
    std::string flag = ws() + "/" + uniqueName("flag");
    auto s =
        sb.execStream("echo first; while [ ! -e " + flag + " ]; do sleep 0.02; done; echo second");
    REQUIRE(readUntil(s, Type::Stdout, "first"));
    auto other = getSandbox(client(), sb.id(), {.enableDefaultSession = false});
    other.writeFile(flag, "go");
    REQUIRE(readUntil(s, Type::Stdout, "second"));
    auto last = s.next();
    REQUIRE(last);
    CHECK(last->type == Type::Complete);
}

TEST_CASE("destroying an ExecStream early cancels the command") {
    auto sb = freshSandbox("cancel");
    // A session-less handle on the same sandbox looks at its processes while the default session
    // is busy with the stream.
    auto probe = getSandbox(client(), sb.id(), {.enableDefaultSession = false});
    const std::string marker = "sleep 4242." + std::to_string(::getpid());
    {
        auto s = sb.execStream("echo ready; " + marker + "; echo never");
        REQUIRE(readUntil(s, Type::Stdout, "ready"));
        CHECK(eventually([&] { return countProcesses(probe, marker) >= 1; }));
    }  // the stream goes away here
    if (isNarrow()) {
        // Cloudflare's bridge does not stop a command whose client hung up (documented in
        // docs/compatibility.md): it runs on, and ends with its sandbox.
        CHECK(countProcesses(probe, marker) >= 1);
        sb.destroy();
        return;
    }
    CHECK(eventually([&] { return countProcesses(probe, marker) == 0; }));
    // The sandbox and its default session work on.
    auto r = sb.exec("echo still here");
    CHECK(r.stdoutText == inSession("still here\n"));
}

TEST_CASE("a stream that ends without a complete event is StreamLostError") {
    // A container API that ends the exec stream cleanly (terminating chunk) without `complete`.
    auto frame = [](const std::string& json) { return "data: " + json + "\n\n"; };
    FakeServer agentLike([&](const std::string&, const std::string& target, const std::string&) {
        if (target == "/api/session/create")
            return httpResponse(200, "application/json",
                                R"({"success":true,"id":"x","timestamp":"t"})");
        if (target == "/api/execute/stream")
            return chunkedResponse(
                200, "text/event-stream",
                {frame(R"({"type":"start","command":"c","timestamp":"t"})"),
                 frame(R"({"type":"stdout","data":"partial\n","timestamp":"t"})")});
        return httpResponse(404, "text/plain", "404 Not Found");
    });
    ClientOptions o;
    o.agentUrl = agentLike.url();
    o.retryBudget = 0ms;
    auto sb = getSandbox(Client(o), "lost");
    {
        auto s = sb.execStream("c");
        auto start = s.next();
        REQUIRE(start);
        CHECK(start->type == Type::Start);
        auto out = s.next();
        REQUIRE(out);
        CHECK(out->data == "partial\n");
        CHECK_THROWS_AS(s.next(), StreamLostError);
        CHECK_FALSE(s.next());
    }
    bool onError = false;
    std::string streamed;
    try {
        sb.exec("c", {.stream = true,
                      .onOutput = [&](const std::string&, const std::string& d) { streamed += d; },
                      .onError = [&](const std::exception&) { onError = true; }});
        FAIL("no exception");
    } catch (const StreamLostError& e) {
        CHECK(e.code() == "STREAM_LOST");
    }
    CHECK(onError);
    CHECK(streamed == "partial\n");

    // The same over a bridge (its /exec framing), where exec itself reads a stream.
    FakeServer bridgeLike([&](const std::string&, const std::string& target, const std::string&) {
        if (target.find("/exec") != std::string::npos)
            return chunkedResponse(
                200, "text/event-stream",
                {"event: stdout\ndata: " + core::base64Encode("partial\n") + "\n\n"});
        return httpResponse(404, "text/plain", "404 Not Found");
    });
    ClientOptions b;
    b.apiUrl = bridgeLike.url();
    b.apiKey = "k";
    b.retryBudget = 0ms;
    auto bsb = getSandbox(Client(b), "lost");
    CHECK_THROWS_AS(bsb.exec("c"), StreamLostError);
    auto s = bsb.execStream("c");
    std::string got;
    CHECK_THROWS_AS(
        [&] {
            while (auto ev = s.next())
                if (ev->type == Type::Stdout) got += ev->data;
        }(),
        StreamLostError);
    CHECK(got == "partial\n");

    // A body cut off mid-chunk (connection closed) is StreamLostError as well.
    FakeServer cut([&](const std::string&, const std::string& target, const std::string&) {
        if (target == "/api/session/create")
            return httpResponse(200, "application/json", R"({"success":true})");
        return chunkedResponse(200, "text/event-stream",
                               {frame(R"({"type":"start","command":"c"})")}, false) +
               "40\r\ndata: {\"type\":\"std";
    });
    ClientOptions c;
    c.agentUrl = cut.url();
    c.retryBudget = 0ms;
    auto csb = getSandbox(Client(c), "cut");
    auto cs = csb.execStream("c");
    CHECK(cs.next()->type == Type::Start);
    CHECK_THROWS_AS(cs.next(), StreamLostError);
}

// The command kills the sandbox-agent that runs it (found through /proc in the sandbox's own
// process view).
// Kills what a SIGKILLed agent leaves behind (its commands, found by a marker unique to this
// test process) when the test ends.
struct Reap {
    std::string marker;
    ~Reap() { killHostProcesses(marker); }
};

TEST_CASE("the server dying mid-stream is a TransportError (StreamLostError)") {
    INFO("mode ", modeName());
    std::unique_ptr<AgentFixture> agent;
    std::unique_ptr<DaemonFixture> daemon;
    ClientOptions o = clientOptions();
    o.retryBudget = 0ms;
    if (isAgent()) {
        agent = std::make_unique<AgentFixture>();
        o.agentUrl = agent->server.url();
    } else if (isTcpBridge()) {
        daemon = std::make_unique<DaemonFixture>("k");
        o.apiUrl = daemon->server.url();
    }
    Client c(o);
    auto sb = getSandbox(c, uniqueName("dies"));
    Reap reap{"sleep 4545." + std::to_string(::getpid())};
    auto s = sb.execStream("echo ready; " + reap.marker);
    REQUIRE(readUntil(s, Type::Stdout, "ready"));
    REQUIRE(eventually([&] { return countHostProcesses(reap.marker) >= 1; }));
    if (agent) {
        agent->server.kill();
    } else if (daemon) {
        daemon->server.kill();
    } else {
        // Embedded: sandboxd is shared by the whole process; the sandbox's agent dies instead
        // (killed from the host: nothing inside a sandbox can kill its agent).
        REQUIRE(killAgentOnHost(sb.id()) == 1);
    }
    try {
        while (s.next()) {
        }
        FAIL("the stream ended normally");
    } catch (const StreamLostError& e) {
        CHECK(e.code() == "STREAM_LOST");
    }
    // sandboxd's sandboxes die with it (and with their agent): nothing is left running.
    if (!isAgent()) CHECK(eventually([&] { return countHostProcesses(reap.marker) == 0; }));
}

TEST_CASE("the server dying during a request is SandboxGoneError (a TransportError)") {
    if (mode() == Mode::Embedded) {
        // The embedded sandboxd is shared by every Client of the process and cannot be killed
        // here; an agent that dies under sandboxd's passthrough is covered above.
        auto sb = freshSandbox("gone");
        Reap reap{"sleep 4646." + std::to_string(::getpid())};
        std::thread killer([&] {
            if (eventually([&] { return countHostProcesses(reap.marker) >= 1; }))
                killAgentOnHost(sb.id());
        });
        CHECK_THROWS_AS(sb.exec(reap.marker), SandboxError);
        killer.join();
        return;
    }
    std::unique_ptr<AgentFixture> agent;
    std::unique_ptr<DaemonFixture> daemon;
    ClientOptions o = clientOptions();
    o.retryBudget = 0ms;
    if (isAgent()) {
        agent = std::make_unique<AgentFixture>();
        o.agentUrl = agent->server.url();
    } else {
        daemon = std::make_unique<DaemonFixture>("k");
        o.apiUrl = daemon->server.url();
    }
    auto sb = getSandbox(Client(o), uniqueName("gone"));
    sb.exec("true");  // the sandbox exists
    auto probe = getSandbox(Client(o), sb.id(), {.enableDefaultSession = false});
    const std::string marker = "sleep 4343." + std::to_string(::getpid());
    Reap reap{marker};
    std::exception_ptr failure;
    std::thread t([&] {
        try {
            sb.exec(marker);
        } catch (...) {
            failure = std::current_exception();
        }
    });
    bool running = eventually([&] { return countProcesses(probe, marker) >= 1; });
    if (agent)
        agent->server.kill();
    else
        daemon->server.kill();
    t.join();
    REQUIRE(running);
    REQUIRE(failure);
    try {
        std::rethrow_exception(failure);
    } catch (const SandboxGoneError& e) {
        // A request that is not a stream (this test's own server is always sandboxd or an
        // agent: Cloudflare's bridge cannot be killed from here).
        CHECK(e.code() == "SANDBOX_GONE");
    }
    if (!isAgent()) CHECK(eventually([&] { return countHostProcesses(marker) == 0; }));
}

}  // namespace
}  // namespace sandbox::testing::sdk
