// sandboxd under hostile clients, which do not play by HTTP's rules, and the SDK's HTTP client
// against a server that defends itself (see docs/sandboxd.md, "Hostile clients").
#include "daemon/daemon_test_util.hpp"
#include "support/raw_conn.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;

namespace {

// How long the server is given to answer or close: generous, never a measure of speed.
constexpr auto kBound = std::chrono::seconds(20);

/// A refusal by the server itself, then the close: `status`, a bridge JSON error with `code`.
void checkRefusal(const std::optional<std::string>& resp, int status, const std::string& code) {
    REQUIRE_MESSAGE(resp.has_value(), "the server did not close the connection");
    INFO(*resp);
    CHECK(rawResponseStatus(*resp) == status);
    CHECK(rawResponseHeader(*resp, "content-type") == "application/json");
    CHECK(rawResponseHeader(*resp, "connection") == "close");
    json body = json::parse(rawResponseBody(*resp), nullptr, false);
    REQUIRE(body.is_object());
    CHECK(body.size() == 2);
    CHECK(body["code"] == code);
    CHECK(body["error"].is_string());
}

}  // namespace

TEST_SUITE("daemon.hostile") {
    TEST_CASE("malformed HTTP is answered 400, an oversized head 431, then closed") {
        DaemonFixture d;
        auto refusedWith = [&](const std::string& bytes, int status) {
            RawConn c(d.server.port());
            REQUIRE(c.send(bytes));
            checkRefusal(c.readToClose(kBound), status, "invalid_request");
        };
        refusedWith("GARBAGE\r\n\r\n", 400);
        refusedWith("GET /health HTTP/1.1\r\nNo colon in this line\r\n\r\n", 400);
        refusedWith("GET /health HTTP/1.1\r\nContent-Length: lots\r\n\r\n", 400);
        refusedWith("POST /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n", 400);
        refusedWith("GET /health HTTP/1.1\r\nX-Big: " + std::string(70 * 1024, 'a') + "\r\n\r\n",
                    431);
        CHECK(call(d.http, "GET", "/health").status == 200);
    }
}  // TEST_SUITE
