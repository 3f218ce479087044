// sandboxd's GET /v1/sandbox/:id/pty (bridge-api §5.15, §9, §13.7): checks made before the
// upgrade, auth on the upgrade, and the terminal relayed from the sandbox's agent.
#include "daemon_test_util.hpp"
#include "support/pty_client.hpp"

namespace sandbox::testing::daemon {
namespace {

client::Endpoint endpointOf(DaemonFixture& d) {
    return client::Endpoint::parse(d.server.url());
}

// The refusal of an upgrade to `target` (status and body); status 101 if it was accepted.
std::pair<int, std::string> upgradeStatus(DaemonFixture& d, const std::string& target,
                                          const client::HeaderList& headers = {}) {
    try {
        client::WebSocketClient ws(endpointOf(d), target, headers);
        return {101, ""};
    } catch (const client::WsHandshakeError& e) {
        return {e.status(), e.body()};
    }
}

}  // namespace

TEST_CASE("bridge pty: checks before the upgrade") {
    DaemonFixture d;
    std::string id = newSandbox(d.http);
    // PT1: no Upgrade header.
    checkBridgeError(call(d.http, "GET", sandboxPath(id, "/pty")), 400, "invalid_request",
                     "WebSocket upgrade required");
    // PT5/PT6: not numbers.
    auto r = upgradeStatus(d, sandboxPath(id, "/pty?cols=abc"));
    CHECK(r.first == 400);
    CHECK(r.second == errorBody("cols and rows must be valid numbers", "invalid_request"));
    r = upgradeStatus(d, sandboxPath(id, "/pty?rows=xyz"));
    CHECK(r.first == 400);
    // Session id format (§4.2), from the query or the header.
    r = upgradeStatus(d, sandboxPath(id, "/pty?session=a..b"));
    CHECK(r.first == 400);
    CHECK(r.second == errorBody("Invalid session ID format", "invalid_request"));
    r = upgradeStatus(d, sandboxPath(id, "/pty"), {{"Session-Id", "bad id"}});
    CHECK(r.first == 400);
    // A bad sandbox id is refused before anything else.
    r = upgradeStatus(d, "/v1/sandbox/NOT-VALID/pty");
    CHECK(r.first == 400);
}

TEST_CASE("bridge pty: auth on the upgrade") {
    DaemonFixture d("secret");
    client::HeaderList good = {{"Authorization", "Bearer secret"}};
    std::string id = newSandbox(d.http, good);
    // PT10: no Authorization; a wrong token.
    auto r = upgradeStatus(d, sandboxPath(id, "/pty"));
    CHECK(r.first == 401);
    CHECK(r.second == errorBody("Unauthorized", "unauthorized"));
    r = upgradeStatus(d, sandboxPath(id, "/pty"), {{"Authorization", "Bearer wrong"}});
    CHECK(r.first == 401);
    // PT11: the right token opens the terminal.
    PtyClient p(endpointOf(d), sandboxPath(id, "/pty"), good);
    REQUIRE(p.waitReady());
    p.send("echo authed-$((20+3))\n");
    CHECK(p.waitOutput("authed-23"));
}

TEST_CASE("bridge pty: input before ready, size, resize, exit code") {
    DaemonFixture d;
    std::string id = newSandbox(d.http);
    PtyClient p(endpointOf(d), sandboxPath(id, "/pty?cols=0x64&rows=1e1&session=bp1"));
    p.send("echo early-$((40+2)); stty size\n");  // before `ready`
    REQUIRE(p.waitReady());
    CHECK(p.waitOutput("early-42"));
    CHECK(p.waitOutput("10 100"));  // Number("0x64") = 100, Number("1e1") = 10
    p.resize(120, 40);
    p.send("stty size\n");
    CHECK(p.waitOutput("40 120"));
    p.send("exit 9\n");
    REQUIRE(p.waitClosed());
    CHECK(p.exitCode == std::optional<int>(9));
    CHECK(p.ws->closeCode() == 1000);
}

TEST_CASE("bridge pty: replay on reconnect; the default session is shared with exec") {
    DaemonFixture d;
    std::string id = newSandbox(d.http);
    {
        PtyClient p(endpointOf(d), sandboxPath(id, "/pty"));
        REQUIRE(p.waitReady());
        p.send("export FROM_PTY=1; echo replayed-$((7*6))\n");
        REQUIRE(p.waitOutput("replayed-42"));
    }
    PtyClient q(endpointOf(d), sandboxPath(id, "/pty"), {{"Session-Id", ""}});
    REQUIRE(q.waitReady());
    CHECK(q.beforeReady.find("replayed-42") != std::string::npos);
    // Another session gets another terminal (no replay of the first).
    PtyClient other(endpointOf(d), sandboxPath(id, "/pty?session=other"));
    REQUIRE(other.waitReady());
    CHECK(other.beforeReady.find("replayed-42") == std::string::npos);
}

}  // namespace sandbox::testing::daemon

namespace sandbox::testing::daemon {

TEST_CASE("agent passthrough: WebSockets reach the agent's /ws/pty and /ws") {
    DaemonFixture d("secret");
    client::HeaderList good = {{"Authorization", "Bearer secret"}};
    std::string id = newSandbox(d.http, good);
    auto ep = client::Endpoint::parse(d.server.url());
    // Auth applies to the upgrade.
    try {
        client::WebSocketClient ws(ep, sandboxPath(id, "/agent/ws/pty?sessionId=pp"), {});
        FAIL("the upgrade was accepted without a key");
    } catch (const client::WsHandshakeError& e) {
        CHECK(e.status() == 401);
    }
    PtyClient p(ep, sandboxPath(id, "/agent/ws/pty?sessionId=pp&cols=50&rows=7"), good);
    REQUIRE(p.waitReady());
    p.send("stty size\n");
    CHECK(p.waitOutput("7 50"));
    // The agent's own refusal comes back as it is.
    try {
        client::WebSocketClient ws(ep, sandboxPath(id, "/agent/ws/pty"), good);
        FAIL("the upgrade was accepted without a session id");
    } catch (const client::WsHandshakeError& e) {
        CHECK(e.status() == 400);
        CHECK(e.body() == "sessionId query parameter required");
    }
    // The route multiplexer.
    client::WebSocketClient mux(ep, sandboxPath(id, "/agent/ws"), good);
    mux.sendText(R"({"type":"request","id":"m1","method":"GET","path":"/api/ping"})");
    client::WsMessage m;
    REQUIRE(mux.read(m, 30s) == client::WebSocketClient::ReadResult::Message);
    auto j = json::parse(m.data);
    CHECK(j["id"] == "m1");
    CHECK(j["status"] == 200);
    CHECK(j["body"]["success"] == true);
}

}  // namespace sandbox::testing::daemon
