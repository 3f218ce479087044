// sandbox-agent's WebSocket endpoints: /ws/pty (container-api §7) and the /ws route
// multiplexer (§6), against a real agent.
#include <map>

#include "agent_test_util.hpp"
#include "support/pty_client.hpp"

namespace sandbox::testing::agent {
namespace {

using namespace std::chrono_literals;

client::Endpoint endpointOf(AgentFixture& a) {
    return client::Endpoint::parse(a.server.url());
}

std::string ptyTarget(const std::string& session, const std::string& extra = "") {
    return "/ws/pty?sessionId=" + session + extra;
}

}  // namespace

TEST_CASE("pty: handshake errors are plain HTTP") {
    AgentFixture a;
    // Without an upgrade the path is an ordinary (unknown) route.
    auto r = call(a.http, "GET", "/ws/pty?sessionId=x");
    CHECK(r.status == 404);
    // An upgrade without a session id.
    try {
        client::WebSocketClient ws(endpointOf(a), "/ws/pty", {});
        FAIL("the upgrade was accepted");
    } catch (const client::WsHandshakeError& e) {
        CHECK(e.status() == 400);
        CHECK(e.body() == "sessionId query parameter required");
    }
}

TEST_CASE("pty: input sent before ready is not lost; size from the query; exit code") {
    AgentFixture a;
    PtyClient p(endpointOf(a), ptyTarget("p1", "&cols=91&rows=17"));
    // Straight after the upgrade, before reading anything (so before `ready`).
    p.send("echo early-$((40+2)); stty size\n");
    REQUIRE(p.waitReady());
    CHECK(p.waitOutput("early-42"));
    CHECK(p.waitOutput("17 91"));
    p.send("exit 7\n");
    REQUIRE(p.waitClosed());
    REQUIRE(p.exitCode.has_value());
    CHECK(*p.exitCode == 7);
    CHECK(p.ws->closeCode() == 1000);
    CHECK(p.order.back() == "exit");
}

TEST_CASE("pty: resize changes what the shell sees; bad control frames are answered") {
    AgentFixture a;
    PtyClient p(endpointOf(a), ptyTarget("p2"));
    REQUIRE(p.waitReady());
    p.send("stty size\n");
    CHECK(p.waitOutput("24 80"));
    p.resize(132, 43);
    p.send("stty size\n");
    CHECK(p.waitOutput("43 132"));

    p.ws->sendText("not json");
    CHECK(p.until([&] { return !p.errors.empty(); }));
    CHECK(p.errors.at(0) == "Invalid control message");
    p.ws->sendText(R"({"type":"resize","cols":0,"rows":10})");
    CHECK(p.until([&] { return p.errors.size() == 2; }));
    CHECK(p.errors.at(1) == "Invalid dimensions: cols and rows must be positive");
    p.ws->sendText(R"({"type":"something-else"})");  // ignored
    p.send("echo still-$((1+1))\n");
    CHECK(p.waitOutput("still-2"));
    CHECK(p.errors.size() == 2);
}

TEST_CASE("pty: a reconnecting client gets the recent output replayed before ready") {
    AgentFixture a;
    {
        PtyClient p(endpointOf(a), ptyTarget("p3"));
        REQUIRE(p.waitReady());
        p.send("echo replay-$((3*3))-marker\n");
        REQUIRE(p.waitOutput("replay-9-marker"));
    }  // disconnect: the shell keeps running
    PtyClient q(endpointOf(a), ptyTarget("p3", "&cols=10&rows=5"));
    REQUIRE(q.waitReady());
    CHECK(q.beforeReady.find("replay-9-marker") != std::string::npos);
    CHECK(q.order.front() == "binary");
    // The same shell: the size of the second connection was not applied.
    q.send("stty size\n");
    CHECK(q.waitOutput("24 80"));
}

TEST_CASE("pty: the replay keeps the last 256 KiB") {
    AgentFixture a;
    {
        PtyClient p(endpointOf(a), ptyTarget("big"));
        REQUIRE(p.waitReady());
        p.send("head -c 600000 /dev/zero | tr '\\0' x; echo; echo end-$((50+50))\n");
        REQUIRE(p.waitOutput("end-100"));
    }
    PtyClient q(endpointOf(a), ptyTarget("big"));
    REQUIRE(q.waitReady());
    CHECK(q.beforeReady.size() == core::wire::kPtyReplayBytes);
    CHECK(q.beforeReady.find("end-100") != std::string::npos);
}

TEST_CASE("pty: a shell that cannot start reports exit 127") {
    AgentFixture a;
    PtyClient p(endpointOf(a), ptyTarget("noshell", "&shell=/no/such/shell"));
    REQUIRE(p.waitClosed());
    CHECK(p.exitCode == std::optional<int>(127));
    CHECK(p.output.find("cannot start the shell") != std::string::npos);
}

TEST_CASE("pty: two connections share the terminal; both get the exit") {
    AgentFixture a;
    PtyClient p(endpointOf(a), ptyTarget("p4"));
    PtyClient q(endpointOf(a), ptyTarget("p4"));
    REQUIRE(p.waitReady());
    REQUIRE(q.waitReady());
    p.send("echo shared-$((5+5))\n");
    CHECK(q.waitOutput("shared-10"));
    q.send("exit 3\n");
    REQUIRE(p.waitClosed());
    REQUIRE(q.waitClosed());
    CHECK(p.exitCode == std::optional<int>(3));
    CHECK(q.exitCode == std::optional<int>(3));
    // A new connection after the exit gets a fresh shell.
    PtyClient r(endpointOf(a), ptyTarget("p4"));
    REQUIRE(r.waitReady());
    r.send("echo fresh-$((2*4))\n");
    CHECK(r.waitOutput("fresh-8"));
}

TEST_CASE("pty: the terminal inherits the session's environment and directory") {
    AgentFixture a;
    auto c = post(a, "/api/session/create",
                  json{{"id", "envsess"}, {"env", {{"PTY_TEST_VAR", "from-session"}}}});
    REQUIRE(c.status == 200);
    std::filesystem::create_directories(a.workspace() + "/sub");
    REQUIRE(post(a, "/api/execute", json{{"command", "cd sub"}, {"sessionId", "envsess"}}).status ==
            200);
    PtyClient p(endpointOf(a), ptyTarget("envsess"));
    REQUIRE(p.waitReady());
    p.send("echo \"[$PTY_TEST_VAR|$TERM|$(basename \"$PWD\")]\"\n");
    CHECK(p.waitOutput("[from-session|xterm-256color|sub]"));
}

TEST_CASE("pty: deleting the session ends its terminal") {
    AgentFixture a;
    PtyClient p(endpointOf(a), ptyTarget("delsess"));
    REQUIRE(p.waitReady());
    REQUIRE(post(a, "/api/session/delete", json{{"sessionId", "delsess"}}).status == 200);
    REQUIRE(p.waitClosed());
    CHECK(p.exitCode == std::optional<int>(137));
}

// ---- the /ws route multiplexer --------------------------------------------------------------

namespace {

struct MuxClient {
    client::WebSocketClient ws;
    std::vector<json> frames;
    explicit MuxClient(AgentFixture& a, const std::string& path = "/ws")
        : ws(endpointOf(a), path, {}) {}
    void request(const std::string& id, const std::string& method, const std::string& path,
                 const std::optional<json>& body = std::nullopt,
                 std::vector<std::pair<std::string, std::string>> headers = {}) {
        core::wire::WsRequest r;
        r.type = "request";
        r.id = id;
        r.method = method;
        r.path = path;
        r.body = body;
        r.headers = std::move(headers);
        ws.sendText(core::wire::wsRequestJson(r));
    }
    // Reads frames until `pred` holds over everything received.
    bool until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 30s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!pred()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            client::WsMessage m;
            auto r = ws.read(m, left);
            if (r != client::WebSocketClient::ReadResult::Message) return pred();
            frames.push_back(json::parse(m.data));
        }
        return true;
    }
    std::optional<json> final(const std::string& id) const {
        for (const auto& f : frames)
            if (f.value("id", "") == id && (f["type"] == "response" || f["type"] == "error"))
                return f;
        return std::nullopt;
    }
    bool waitFinal(const std::string& id) {
        return until([&] { return final(id).has_value(); });
    }
    std::vector<json> streamed(const std::string& id) const {
        std::vector<json> out;
        for (const auto& f : frames)
            if (f.value("id", "") == id && f["type"] == "stream") out.push_back(f);
        return out;
    }
    // Index of the final frame of `id` among all frames.
    std::size_t finalIndex(const std::string& id) const {
        for (std::size_t i = 0; i < frames.size(); ++i)
            if (frames[i].value("id", "") == id && frames[i]["type"] == "response") return i;
        return frames.size();
    }
};

}  // namespace

TEST_CASE("ws mux: request/response, on /ws and /api/ws") {
    AgentFixture a;
    for (const char* path : {"/ws", "/api/ws"}) {
        MuxClient m(a, path);
        m.request("r1", "GET", "/api/ping");
        REQUIRE(m.waitFinal("r1"));
        auto f = *m.final("r1");
        CHECK(f["type"] == "response");
        CHECK(f["status"] == 200);
        CHECK(f["done"] == true);
        CHECK(f["body"]["success"] == true);

        m.request("r2", "POST", "/api/execute", json{{"command", "echo mux-$((6*7))"}});
        REQUIRE(m.waitFinal("r2"));
        f = *m.final("r2");
        CHECK(f["status"] == 200);
        CHECK(f["body"]["stdout"].get<std::string>().find("mux-42") != std::string::npos);
        CHECK(f["body"]["exitCode"] == 0);
    }
}

TEST_CASE("ws mux: a streaming route streams, then ends with a bodiless response") {
    AgentFixture a;
    MuxClient m(a);
    m.request("s1", "POST", "/api/execute/stream",
              json{{"command", "echo a; echo b >&2"}, {"sessionId", "w1"}});
    REQUIRE(m.waitFinal("s1"));
    auto events = m.streamed("s1");
    REQUIRE(events.size() >= 4);
    std::vector<std::string> types;
    for (const auto& e : events) {
        CHECK_FALSE(e.contains("event"));
        auto data = json::parse(e["data"].get<std::string>());  // double-encoded
        types.push_back(data["type"]);
    }
    CHECK(types.front() == "start");
    CHECK(types.back() == "complete");
    CHECK(std::find(types.begin(), types.end(), "stdout") != types.end());
    CHECK(std::find(types.begin(), types.end(), "stderr") != types.end());
    auto f = *m.final("s1");
    CHECK(f["status"] == 200);
    CHECK_FALSE(f.contains("body"));
    CHECK(m.finalIndex("s1") == m.frames.size() - 1);
}

TEST_CASE("ws mux: errors") {
    AgentFixture a;
    MuxClient m(a);
    m.ws.sendText("this is not json");
    REQUIRE(m.until([&] { return m.frames.size() == 1; }));
    CHECK(m.frames[0] == json{{"type", "error"},
                              {"code", "PARSE_ERROR"},
                              {"message", "Invalid JSON message"},
                              {"status", 400}});
    m.ws.sendText(R"({"type":"subscribe","id":"x"})");
    REQUIRE(m.until([&] { return m.frames.size() == 2; }));
    CHECK(m.frames[1]["code"] == "INVALID_REQUEST");
    CHECK(m.frames[1]["message"] == "Message must be a valid WSRequest");
    CHECK_FALSE(m.frames[1].contains("id"));

    m.request("e1", "PATCH", "/api/ping");
    REQUIRE(m.waitFinal("e1"));
    CHECK((*m.final("e1"))["type"] == "error");
    CHECK((*m.final("e1"))["code"] == "INTERNAL_ERROR");
    CHECK((*m.final("e1"))["status"] == 500);

    m.request("e2", "GET", "/api/no-such-route");
    REQUIRE(m.waitFinal("e2"));
    CHECK((*m.final("e2"))["type"] == "response");
    CHECK((*m.final("e2"))["status"] == 404);

    // %00 in a path is refused here too, as over HTTP.
    m.request("e4", "GET", "/api/ping%00");
    REQUIRE(m.waitFinal("e4"));
    CHECK((*m.final("e4"))["type"] == "error");
    CHECK((*m.final("e4"))["code"] == "VALIDATION_FAILED");
    CHECK((*m.final("e4"))["status"] == 400);

    // A streaming route's error is one response with the error body.
    m.request("e3", "POST", "/api/read/stream", json{{"path", a.workspace() + "/missing"}});
    REQUIRE(m.waitFinal("e3"));
    auto f = *m.final("e3");
    CHECK(f["type"] == "response");
    INFO(f.dump());
    CHECK(m.streamed("e3").size() <= 1);
}

TEST_CASE("ws mux: requests on one socket run concurrently; cancel ends a stream") {
    AgentFixture a;
    MuxClient m(a);
    std::string flag = a.workspace() + "/flag";
    // r1 can only finish after r2 ran: sequential handling would never finish.
    m.request("r1", "POST", "/api/execute",
              json{{"command", "until [ -f '" + flag + "' ]; do sleep 0.02; done; echo got-flag"},
                   {"sessionId", "c1"}});
    m.request("r2", "POST", "/api/write", json{{"path", flag}, {"content", "x"}},
              {{"X-Session-Id", "c2"}});
    REQUIRE(m.waitFinal("r1"));
    REQUIRE(m.waitFinal("r2"));
    CHECK((*m.final("r2"))["status"] == 200);
    CHECK((*m.final("r1"))["body"]["stdout"].get<std::string>().find("got-flag") !=
          std::string::npos);
    CHECK(m.finalIndex("r2") < m.finalIndex("r1"));

    m.request("s", "POST", "/api/execute/stream",
              json{{"command", "echo started; sleep 60"}, {"sessionId", "c3"}});
    REQUIRE(m.until([&] { return !m.streamed("s").empty(); }));
    m.ws.sendText(R"({"type":"cancel","id":"s"})");
    REQUIRE(m.waitFinal("s"));
    CHECK((*m.final("s"))["status"] == 200);
    // The socket still serves requests.
    m.request("after", "GET", "/api/ping");
    REQUIRE(m.waitFinal("after"));
    CHECK((*m.final("after"))["status"] == 200);
}

}  // namespace sandbox::testing::agent
