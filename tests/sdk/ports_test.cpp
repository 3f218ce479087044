// Sandbox::exposePort and friends, and Sandbox::tunnels(), on every transport: the whole flow
// on sandboxd (the embedded default and the bridge mode), UnsupportedOperationError where a
// transport cannot serve them (the agent transport; exposures on Cloudflare's bridge), and the
// reference's argument checks (SandboxSecurityError) everywhere.
#include "client/http_client.hpp"
#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

// GET `path` through a preview or tunnel URL ("http://HOST:PORT/"): connects to the URL's port
// on loopback and sends the URL's host (as browsers resolve *.localhost).
std::pair<int, std::string> fetch(const std::string& url, const std::string& path = "/") {
    auto start = url.find("://") + 3;
    std::string hostPort = url.substr(start, url.find('/', start) - start);
    std::string port = hostPort.substr(hostPort.rfind(':') + 1);
    client::HttpConnection c(client::Endpoint::parse("http://127.0.0.1:" + port));
    auto r = c.request("GET", path, {}, {{"Host", hostPort}});
    return {r.status, r.body};
}

}  // namespace

TEST_CASE("ports: the reference's argument checks, on every transport") {
    const Sandbox& sb = shared();
    for (int bad : {0, 80, 1023, 3000, 65536, -1}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(sb.exposePort(bad), SandboxSecurityError);
        CHECK_THROWS_AS(sb.unexposePort(bad), SandboxSecurityError);
        CHECK_THROWS_AS(sb.tunnels().get(bad), SandboxSecurityError);
        CHECK_FALSE(sb.isPortExposed(bad));
        CHECK_FALSE(sb.validatePortToken(bad, "abc"));
    }
    for (const char* token : {"UPPER", "a-b", "", "seventeen_chars_x", "sp ace"}) {
        CAPTURE(token);
        CHECK_THROWS_AS(sb.exposePort(8080, {.token = token}), SandboxSecurityError);
    }
    CHECK_THROWS_AS(sb.exposePort(8080, {.hostname = "app.workers.dev"}),
                    CustomDomainRequiredError);
    for (const char* name : {"-app", "app-", "a.b", "UP", ""}) {
        CAPTURE(name);
        CHECK_THROWS_AS(sb.tunnels().get(8080, {.name = name}), SandboxSecurityError);
    }
}

TEST_CASE("ports: what a transport cannot serve is UnsupportedOperationError") {
    const Sandbox& sb = shared();
    if (isAgent()) {
        CHECK_THROWS_AS(sb.exposePort(8080), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.getExposedPorts(), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.tunnels().get(8080), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.tunnels().list(), UnsupportedOperationError);
        try {
            sb.exposePort(8080);
        } catch (const UnsupportedOperationError& e) {
            CHECK(std::string(e.what()).find("sandboxd") != std::string::npos);
        }
    } else if (isNarrow()) {
        CHECK_THROWS_AS(sb.exposePort(8080), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.unexposePort(8080), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.isPortExposed(8080), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.tunnels().list(), UnsupportedOperationError);
        // The bridge's tunnel route is reached: without cloudflared in the container it fails
        // with the bridge's error, typed.
        try {
            auto t = sb.tunnels().get(8080);
            CHECK(t.url.rfind("https://", 0) == 0);
            sb.tunnels().destroy(t);
        } catch (const SandboxError& e) {
            CHECK(e.code() == "tunnel_error");
        }
    } else {
        MESSAGE("sandboxd serves every port method here");
    }
}

TEST_CASE("ports: a server in the sandbox by its preview URL, then revoked") {
    if (isAgent() || isNarrow()) return;  // above
    auto sb = freshSandbox("ports");
    sb.writeFile(ws() + "/site/index.html", "preview-ok\n");
    auto server =
        sb.startProcess("python3 -m http.server 8000 --bind 127.0.0.1", {.cwd = ws() + "/site"});
    server.waitForPort(8000, {.path = "/", .timeout = 30s});

    auto exposed = sb.exposePort(8000, {.name = "web", .token = "my_token1"});
    CHECK(exposed.port == 8000);
    CHECK(exposed.name == std::optional<std::string>("web"));
    CHECK(exposed.url.find("8000-") == 7);
    CHECK(exposed.url.find("-my_token1.localhost:") != std::string::npos);
    auto [status, body] = fetch(exposed.url, "/index.html");
    CHECK(status == 200);
    CHECK(body == "preview-ok\n");

    auto ports = sb.getExposedPorts();
    REQUIRE(ports.size() == 1);
    CHECK(ports[0].port == 8000);
    CHECK(ports[0].url == exposed.url);
    CHECK(ports[0].status == "active");
    CHECK(ports[0].name == std::optional<std::string>("web"));
    CHECK(sb.getExposedPorts("sandbox.example.com")[0].url.rfind("https://8000-", 0) == 0);
    CHECK(sb.isPortExposed(8000));
    CHECK_FALSE(sb.isPortExposed(8001));
    CHECK(sb.validatePortToken(8000, "my_token1"));
    CHECK_FALSE(sb.validatePortToken(8000, "my_token2"));
    CHECK_FALSE(sb.validatePortToken(8000, "NOT VALID"));
    // Re-exposing keeps the token; another port may not take it.
    CHECK(sb.exposePort(8000).url == exposed.url);
    CHECK_THROWS_AS(sb.exposePort(8001, {.token = "my_token1"}), SandboxSecurityError);

    sb.unexposePort(8000);
    sb.unexposePort(8000);  // idempotent
    CHECK(fetch(exposed.url).first == 404);
    CHECK_FALSE(sb.isPortExposed(8000));
    CHECK(sb.getExposedPorts().empty());

    // A tunnel to the same server: idempotent, listed, destroyed.
    auto t = sb.tunnels().get(8000);
    CHECK(t.port == 8000);
    CHECK(t.id.size() == 8);
    CHECK(fetch(t.url, "/index.html").second == "preview-ok\n");
    CHECK(sb.tunnels().get(8000).id == t.id);
    CHECK_THROWS_AS(sb.tunnels().get(8000, {.name = "other"}), SandboxError);
    auto list = sb.tunnels().list();
    REQUIRE(list.size() == 1);
    CHECK(list[0].url == t.url);
    sb.tunnels().destroy(t);
    sb.tunnels().destroy(8000);  // idempotent
    CHECK(sb.tunnels().list().empty());
    CHECK_THROWS_AS(fetch(t.url), std::exception);  // no listener any more
    sb.destroy();
}

}  // namespace sandbox::testing::sdk

namespace sandbox::testing::sdk {

TEST_CASE("SandboxOptions::network: applied on first use, or a typed refusal") {
    SandboxOptions bad;
    bad.network = NetworkOptions{.outbound = true, .allow = {"pypi:443"}};
    SandboxOptions outbound;
    outbound.network = NetworkOptions{.outbound = true, .allow = {}};
    auto badSb = getSandbox(client(), uniqueName("netbad"), bad);
    auto sb = getSandbox(client(), uniqueName("net"), outbound);
    if (isAgent() || isNarrow()) {
        CHECK_THROWS_AS(badSb.exec("true"), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.exec("true"), UnsupportedOperationError);
        return;
    }
    CHECK_THROWS_AS(badSb.exec("true"), ValidationFailedError);
    try {
        auto r = sb.exec("cat /proc/net/dev");
        CHECK(r.stdoutText.find("tap0") != std::string::npos);
        sb.destroy();
    } catch (const SandboxError& e) {
        CHECK(e.code() == "OUTBOUND_UNAVAILABLE");
        MESSAGE("outbound networking is not available here: " << e.what());
    }
}

}  // namespace sandbox::testing::sdk
