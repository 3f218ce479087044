// The pure parts of sandboxd's ports (daemon/ports.hpp): preview Host parsing, the port and
// token rules, and the check of a descriptor an agent passes back.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/ports.hpp"

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
    int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    CHECK(acceptablePassedSocket(listener) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    int conn = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(::connect(conn, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    CHECK(acceptablePassedSocket(conn) == AF_INET);
    CHECK(acceptablePassedSocket(-1) == 0);
    for (int fd : {pipeFds[0], pipeFds[1], file, pair[0], pair[1], udp, listener, conn})
        ::close(fd);
}

}  // namespace sandbox::daemon
