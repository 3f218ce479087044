// Opt-in outbound networking (daemon/network.hpp, docs/network.md): the policy routes and their
// checks; then, where sandboxd can offer it (root, slirp4netns, nft, /dev/net/tun: scripts/
// bootstrap installs the tools), the allow-list enforced from inside a real sandbox. The
// "outside" is two TCP services of this test on the host's loopback (one allowed, one not) and
// sandboxd's own port; no other address is ever contacted.
#include "daemon_test_util.hpp"
#include "support/loopback.hpp"

namespace sandbox::testing::daemon {
namespace {

// From inside: connects to HOST:PORT (5 s at most) and prints what it read, or the error.
std::string probe(client::HttpConnection& c, const std::string& id, const std::string& host,
                  int port) {
    const std::string script =
        "import socket, sys\n"
        "try:\n"
        "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)\n"
        "    print('read:' + s.recv(100).decode())\n"
        "except Exception as e:\n"
        "    print('error:' + type(e).__name__)\n";
    auto r = run(c, id, {"python3", "-c", script, host, std::to_string(port)});
    return r.out;
}

json putNetwork(DaemonFixture& d, const std::string& id, const std::string& body, int& status) {
    auto r = call(d.http, "PUT", sandboxPath(id, "/network"), body);
    status = r.status;
    return r.body;
}

}  // namespace

TEST_CASE("network: the policy routes check what they are given") {
    DaemonFixture d;
    const std::string id = newSandbox(d.http);
    auto got = call(d.http, "GET", sandboxPath(id, "/network"));
    CHECK(got.status == 200);
    CHECK(got.raw == R"({"allow":[],"mode":"none"})");
    int status = 0;
    for (const char* bad : {"", "{}", R"({"mode":"all"})", R"({"mode":"none","allow":["dns"]})",
                            R"({"mode":"outbound","allow":["pypi.org:443"]})",
                            R"({"mode":"outbound","allow":["10.0.0.0/33"]})"}) {
        CAPTURE(bad);
        auto body = putNetwork(d, id, bad, status);
        CHECK(status == 400);
        CHECK(body["code"] == "VALIDATION_FAILED");
    }
    putNetwork(d, id, R"({"mode":"none"})", status);
    CHECK(status == 200);
    // sandboxd --network-allow needs --network outbound; bad rules are refused at start.
    for (std::vector<std::string> args :
         {std::vector<std::string>{"--network-allow", "dns"},
          std::vector<std::string>{"--network", "outbound", "--network-allow", "nope"},
          std::vector<std::string>{"--network", "some"}}) {
        CAPTURE(args[1]);
        CHECK_THROWS(DaemonFixture({}, args));
    }
}

TEST_CASE("network: outbound reaches what is allowed and nothing else") {
    DaemonFixture d;
    const std::string id = newSandbox(d.http);
    GreetingService allowed("allowed-service"), denied("denied-service");
    const int daemonPort = std::stoi(d.server.url().substr(d.server.url().rfind(':') + 1));
    int status = 0;
    auto body = putNetwork(
        d, id,
        json{{"mode", "outbound"}, {"allow", {"host-loopback:" + std::to_string(allowed.port())}}}
            .dump(),
        status);
    if (status == 501) {
        MESSAGE("outbound networking is not available here: " << body["error"]);
        CHECK(body["code"] == "OUTBOUND_UNAVAILABLE");
        return;
    }
    REQUIRE_MESSAGE(status == 200, body.dump());
    CHECK(body["allow"][0] == "host-loopback:" + std::to_string(allowed.port()));

    // Before: a sandbox without network has only lo, and the host is out of reach.
    // (The policy applies from the next launch: the sandbox was not running yet.)
    CHECK(probe(d.http, id, "10.0.2.2", allowed.port()) == "read:allowed-service\n");
    CHECK(probe(d.http, id, "host.sandbox.internal", allowed.port()) == "read:allowed-service\n");
    CHECK(probe(d.http, id, "10.0.2.2", denied.port()) == "error:ConnectionRefusedError\n");
    CHECK(probe(d.http, id, "10.0.2.2", daemonPort) == "error:ConnectionRefusedError\n");
    CHECK(probe(d.http, id, "10.0.2.3", 53).rfind("error:", 0) == 0);  // no dns rule
    CHECK(denied.accepted == 0);
    CHECK(sh(d.http, id, "cat /proc/net/dev").find("tap0") != std::string::npos);
    // The rules cannot be changed from inside (no capability, in any user namespace).
    auto nft = run(d.http, id, {"sh", "-c", "nft flush ruleset 2>&1; echo rc=$?"});
    CHECK(nft.out.find("rc=0") == std::string::npos);
    CHECK(probe(d.http, id, "10.0.2.2", denied.port()) == "error:ConnectionRefusedError\n");

    // Back to none: the sandbox restarts without network; its files stay.
    sh(d.http, id, "echo kept > /workspace/f");
    putNetwork(d, id, R"({"mode":"none"})", status);
    CHECK(status == 200);
    CHECK(sh(d.http, id, "cat /workspace/f") == "kept\n");
    CHECK(sh(d.http, id, "cat /proc/net/dev").find("tap0") == std::string::npos);
    CHECK(probe(d.http, id, "10.0.2.2", allowed.port()).rfind("error:", 0) == 0);
    CHECK(denied.accepted == 0);

    // Destroyed with its sandbox: no slirp4netns is left.
    putNetwork(d, id, json{{"mode", "outbound"}, {"allow", json::array()}}.dump(), status);
    CHECK(sh(d.http, id, "cat /proc/net/dev").find("tap0") != std::string::npos);
    auto slirps = [&] {
        int n = 0;
        for (const auto& c : childrenOf(d.pid()))
            if (c.comm == "slirp4netns" && c.state != 'Z') ++n;
        return n;
    };
    CHECK(slirps() == 1);
    CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
    CHECK(slirps() == 0);
}

}  // namespace sandbox::testing::daemon
