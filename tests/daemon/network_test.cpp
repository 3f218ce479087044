// Opt-in outbound networking (daemon/network.hpp, docs/network.md): the policy routes and their
// checks; then, where sandboxd can offer it (root, slirp4netns, nft, /dev/net/tun: scripts/
// bootstrap installs the tools), the allow-list enforced from inside a real sandbox. The
// "outside" is two TCP services of this test on the host's loopback (one allowed, one not) and
// sandboxd's own port; no other address is ever contacted.
#include <sched.h>

#include <exception>

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
                            R"({"mode":"outbound","allow":["pypi:443"]})",
                            R"({"mode":"outbound","allow":["py_pi.org:443"]})",
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

namespace sandbox::testing::daemon {

// A host allowed by name. sandboxd runs in network and mount namespaces this test makes: their
// /etc/hosts names a "mirror" at a documentation address (198.51.100.7) given to that
// namespace's loopback, next to a second one (198.51.100.8); the test's services listen there;
// the resolver is a loopback port where nothing answers. No address outside is contacted.
TEST_CASE("network: a host allowed by name is reached where it resolved, and only there") {
    const char* ip = ::access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip";
    if (::geteuid() != 0 || ::access(ip, X_OK) != 0) {
        MESSAGE("skipped: needs root and ip (iproute2) to make a network namespace");
        return;
    }
    TempDir dir;
    const std::string hosts = dir.path() + "/hosts", resolv = dir.path() + "/resolv.conf";
    std::ofstream(hosts) << "127.0.0.1 localhost\n127.0.0.9 loop.sandbox-test.example\n"
                            "198.51.100.7 mirror.sandbox-test.example\n";
    std::ofstream(resolv) << "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n";
    const std::string ipPath = ip;
    const std::string setup = ipPath + " link set lo up && " + ipPath +
                              " addr add 198.51.100.7/32 dev lo && " + ipPath +
                              " addr add 198.51.100.8/32 dev lo && mount --bind \"$1\" /etc/hosts "
                              "&& mount --bind \"$2\" /etc/resolv.conf && shift 2 && exec \"$@\"";
    const std::string sock = dir.path() + "/sandboxd.sock";
    // sandboxd in namespaces of its own, with `extra` arguments; its stderr in `log`.
    auto wrappedArgs = [&](const std::string& state, std::vector<std::string> extra) {
        std::vector<std::string> args{
            "--net", "--mount", "--propagation", "private",           "/bin/sh",     "-c", setup,
            "sh",    hosts,     resolv,          binPath("sandboxd"), "--state-dir", state};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    };
    ServerProcess daemon("/usr/bin/unshare",
                         wrappedArgs(dir.path() + "/state", {"--listen", "unix:" + sock}),
                         {"SANDBOX_API_KEY="}, dir.path() + "/sandboxd.log");
    client::HttpConnection http(client::Endpoint::parse("unix:" + sock));

    // The services, made by a thread that enters sandboxd's network namespace.
    std::optional<GreetingService> mirror, otherPort, otherAddress;
    std::exception_ptr failed;
    std::thread([&] {
        try {
            const std::string ns = "/proc/" + std::to_string(daemon.pid()) + "/ns/net";
            int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
            if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0)
                throw std::runtime_error("cannot enter " + ns);
            ::close(fd);
            mirror.emplace("mirror-service", 0xC6336407, 443);
            otherPort.emplace("other-port", 0xC6336407, 8443);
            otherAddress.emplace("other-address", 0xC6336408, 443);
        } catch (...) {
            failed = std::current_exception();
        }
    }).join();
    if (failed) std::rethrow_exception(failed);

    const std::string id = newSandbox(http);
    auto put = [&](const std::string& rule) {
        return call(http, "PUT", sandboxPath(id, "/network"),
                    json{{"mode", "outbound"}, {"allow", {rule}}}.dump());
    };
    auto r = put("Mirror.Sandbox-Test.example:443");
    if (r.status == 501) {
        MESSAGE("outbound networking is not available here: " << r.body["error"]);
        return;
    }
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    CHECK(r.body["allow"] == json{"mirror.sandbox-test.example:443"});
    CHECK(r.body["resolved"] == json{{"mirror.sandbox-test.example", {"198.51.100.7"}}});
    CHECK(call(http, "GET", sandboxPath(id, "/network")).body == r.body);

    // Inside: the name is found without dns (pinned in /etc/hosts), its address and port are
    // reached; the same address on another port and another address on the port are not.
    CHECK(sh(http, id, "getent hosts mirror.sandbox-test.example") ==
          "198.51.100.7    mirror.sandbox-test.example\n");
    CHECK(probe(http, id, "mirror.sandbox-test.example", 443) == "read:mirror-service\n");
    CHECK(probe(http, id, "198.51.100.7", 8443) == "error:ConnectionRefusedError\n");
    CHECK(probe(http, id, "198.51.100.8", 443) == "error:ConnectionRefusedError\n");
    CHECK(mirror->accepted == 1);
    CHECK(otherPort->accepted == 0);
    CHECK(otherAddress->accepted == 0);

    // Names that cannot be used: one of a loopback address, one that does not resolve. The
    // policy in force stays as it was.
    r = put("loop.sandbox-test.example:80");
    CHECK(r.status == 422);
    CHECK(r.body["code"] == "NETWORK_HOST_NOT_PUBLIC");
    CHECK(r.body["error"].get<std::string>().find("127.0.0.9") != std::string::npos);
    r = put("nothing.sandbox-test.example:443");
    CHECK(r.status == 422);
    CHECK(r.body["code"] == "NETWORK_HOST_UNRESOLVED");
    CHECK(call(http, "GET", sandboxPath(id, "/network")).body["allow"] ==
          json{"mirror.sandbox-test.example:443"});
    CHECK(call(http, "DELETE", sandboxPath(id)).status == 204);

    // The same name as a daemon default: sandboxd refuses to start, naming the address.
    const std::string refusedLog = dir.path() + "/refused.log";
    CHECK_THROWS(ServerProcess(
        "/usr/bin/unshare",
        wrappedArgs(dir.path() + "/state2",
                    {"--network", "outbound", "--network-allow", "loop.sandbox-test.example:80",
                     "--listen", "unix:" + dir.path() + "/refused.sock"}),
        {"SANDBOX_API_KEY="}, refusedLog));
    CHECK(readFile(refusedLog).find("resolves to 127.0.0.9") != std::string::npos);
}

}  // namespace sandbox::testing::daemon
