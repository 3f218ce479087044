// The pure parts of sandboxd's ports (daemon/ports.hpp): preview Host parsing, the port and
// token rules, and the check of a descriptor an agent passes back.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <initializer_list>

#include "daemon/network.hpp"
#include "daemon/ports.hpp"
#include "support/loopback.hpp"

namespace sandbox::daemon {

TEST_CASE("parsePreviewHost: the reference's URL format") {
    auto h = parsePreviewHost("8080-abcdef-tok_1.localhost:9000");
    REQUIRE(h);
    CHECK(h->port == 8080);
    CHECK(h->id == "abcdef");
    CHECK(h->token == "tok_1");
    // Split at the last hyphen; lower-cased; any domain after the first label.
    h = parsePreviewHost("12345-Has-Hyphens-TOKEN.Example.COM");
    REQUIRE(h);
    CHECK(h->port == 12345);
    CHECK(h->id == "has-hyphens");
    CHECK(h->token == "token");
    for (const char* no : {"", "localhost", "localhost:8080", "8080.localhost", "80-a-b.localhost",
                           "123456-a-b.localhost", "8080-a.localhost", "8080--tok.localhost",
                           "8080-a-b", "8080-a-b.", "8080-a-bad!.localhost",
                           "8080-a-seventeen_chars_x.localhost", "[::1]:8080", "80a0-a-b.x"}) {
        CAPTURE(no);
        CHECK_FALSE(parsePreviewHost(no));
    }
}

TEST_CASE("parsePreviewPath: the label after /preview/, and what follows it") {
    auto p = parsePreviewPath("/preview/8080-Abc-tok/x/y?q=1");
    REQUIRE(p);
    CHECK(p->host.port == 8080);
    CHECK(p->host.id == "abc");
    CHECK(p->host.token == "tok");
    CHECK(p->label == "8080-Abc-tok");
    CHECK(p->rest == "/x/y?q=1");
    CHECK(parsePreviewPath("/preview/8080-abc-tok/")->rest == "/");
    CHECK(parsePreviewPath("/preview/8080-abc-tok")->rest.empty());
    CHECK(parsePreviewPath("/preview/8080-abc-tok?q")->rest == "?q");
    for (const char* no : {"/", "/preview/", "/preview/x/", "/previewx/8080-a-b/",
                           "/v1/preview/8080-a-b/", "/preview/80-a-b/", "/preview/8080-a-b!/"}) {
        CAPTURE(no);
        CHECK_FALSE(parsePreviewPath(no));
    }
}

TEST_CASE("rewritePreviewHead: the target replaced, the connection closed unless upgraded") {
    const std::string head =
        "GET /preview/8080-a-b/x?y HTTP/1.1\r\nHost: h:1\r\nConnection: keep-alive\r\n"
        "Keep-Alive: timeout=5\r\nAccept: */*\r\n\r\n";
    CHECK(rewritePreviewHead(head, "/x?y") ==
          "GET /x?y HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    const std::string upgrade =
        "GET /preview/8080-a-b/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
        "Upgrade: websocket\r\n\r\n";
    CHECK(rewritePreviewHead(upgrade, "/ws") ==
          "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
}

TEST_CASE("ports and tokens") {
    for (long long ok : {1024LL, 2999LL, 3001LL, 8080LL, 65535LL}) CHECK(isExposablePort(ok));
    for (long long no : {-1LL, 0LL, 80LL, 1023LL, 3000LL, 65536LL})
        CHECK_FALSE(isExposablePort(no));
    CHECK(isValidPortToken("a"));
    CHECK(isValidPortToken("abc_123_xyz_0000"));
    for (const char* no : {"", "A", "a-b", "a b", "seventeen_chars_x", "é"})
        CHECK_FALSE(isValidPortToken(no));
}

// The attack: a compromised agent answers a relay request with a descriptor that is not the
// TCP connection asked for. sandboxd takes only a connected TCP socket.
TEST_CASE("acceptablePassedSocket: a connected TCP socket, nothing else") {
    int pipeFds[2];
    REQUIRE(::pipe2(pipeFds, O_CLOEXEC) == 0);
    CHECK(acceptablePassedSocket(pipeFds[0]) == 0);
    int file = ::open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    CHECK(acceptablePassedSocket(file) == 0);
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    CHECK(acceptablePassedSocket(pair[0]) == 0);
    int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK(acceptablePassedSocket(udp) == 0);
    testing::LoopbackListener listener;
    CHECK(acceptablePassedSocket(listener.fd) == 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(listener.port));
    int conn = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::connect(conn, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    CHECK(acceptablePassedSocket(conn) == AF_INET);
    CHECK(acceptablePassedSocket(-1) == 0);
    for (int fd : {pipeFds[0], pipeFds[1], file, pair[0], pair[1], udp, conn}) ::close(fd);
}

}  // namespace sandbox::daemon

namespace sandbox::daemon {
namespace {

// An outbound policy of these rules.
core::wire::NetworkPolicy outboundPolicy(std::initializer_list<const char*> rules) {
    std::string why;
    core::wire::NetworkPolicy p;
    p.outbound = true;
    for (const char* r : rules) p.allow.push_back(*core::wire::parseNetworkRule(r, why));
    return p;
}

}  // namespace

// The order is the policy: what is allowed inside the private ranges comes before their
// refusal, broad allowances after it, a refusal last.
TEST_CASE("nftRuleset: private ranges refused unless named, everything else refused last") {
    const std::string rules = nftRuleset(
        outboundPolicy({"0.0.0.0/0:443", "dns", "10.1.0.0/16:5432", "host-loopback:8080"}));
    auto at = [&](const std::string& needle) {
        auto pos = rules.find(needle);
        CAPTURE(needle);
        REQUIRE(pos != std::string::npos);
        return pos;
    };
    CHECK(rules.find("policy drop") != std::string::npos);
    const auto ipv6 = at("meta nfproto ipv6 meta l4proto tcp reject with tcp reset");
    const auto dns = at("ip daddr 10.0.2.3 udp dport 53 accept");
    const auto loopback = at("ip daddr 10.0.2.2 tcp dport 8080 accept");
    const auto slirpNet = at("ip daddr 10.0.2.0/24 meta l4proto tcp reject");
    const auto privateAllowed = at("ip daddr 10.1.0.0/16 tcp dport 5432 accept");
    const auto privateRefused = at("ip daddr { 0.0.0.0/8, 10.0.0.0/8");
    const auto broad = at("ip daddr 0.0.0.0/0 tcp dport 443 accept");
    const auto last = rules.rfind("\n    meta l4proto tcp reject with tcp reset\n");
    CHECK(ipv6 < dns);
    CHECK(dns < loopback);
    CHECK(loopback < slirpNet);
    CHECK(slirpNet < privateAllowed);
    CHECK(privateAllowed < privateRefused);
    CHECK(privateRefused < broad);
    CHECK(broad < last);
    // No rule: only loopback and established traffic pass.
    const std::string closed = nftRuleset(outboundPolicy({}));
    CHECK(closed.find(" accept\n    ip daddr 10.0.2.3") == std::string::npos);
    CHECK(closed.find("tcp dport") == std::string::npos);
}

}  // namespace sandbox::daemon

namespace sandbox::daemon {

// A named host: its resolved addresses allowed after the private ranges' refusal, and pinned
// in the sandbox's /etc/hosts; an unresolved name opens nothing.
TEST_CASE("named hosts: their addresses in the rules and in /etc/hosts") {
    auto p = outboundPolicy({"pypi.org:443", "host-loopback:8080", "mirror.example:8000-8099"});
    p.allow[0].addresses = {0x97650001, 0x97650002};  // 151.101.0.1, .2
    const std::string rules = nftRuleset(p);
    const auto privateRefused = rules.find("ip daddr { 0.0.0.0/8, 10.0.0.0/8");
    const auto first = rules.find("ip daddr 151.101.0.1/32 tcp dport 443 accept");
    const auto second = rules.find("ip daddr 151.101.0.2/32 tcp dport 443 accept");
    REQUIRE(privateRefused != std::string::npos);
    REQUIRE(first != std::string::npos);
    REQUIRE(second != std::string::npos);
    CHECK(privateRefused < first);
    CHECK(rules.find("8000-8099") == std::string::npos);  // not resolved: nothing allowed
    CHECK(hostsFile(p) ==
          "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
          "10.0.2.2 host.sandbox.internal\n151.101.0.1 pypi.org\n151.101.0.2 pypi.org\n");
}

TEST_CASE("named hosts: only public addresses") {
    for (std::uint32_t a : {0x7F000001u, 0x0A000001u, 0xAC100001u, 0xC0A80001u, 0xA9FEA9FEu,
                            0x64400001u, 0x00000000u, 0xE0000001u, 0xFFFFFFFFu, 0x0A000202u})
        CHECK_FALSE(isPublicAddress(a));
    for (std::uint32_t a : {0x97650001u, 0x08080808u, 0xC0000201u, 0xAC200001u, 0x64000001u})
        CHECK(isPublicAddress(a));
}

}  // namespace sandbox::daemon
