// sandbox-agent under hostile clients: the HTTP server it shares with sandboxd refuses %00 in
// paths, malformed requests and oversized heads with the container API's error envelope.
#include "agent/agent_test_util.hpp"
#include "support/raw_conn.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::agent;

namespace {

constexpr auto kBound = std::chrono::seconds(20);

/// A raw exchange: `bytes` sent, everything read until the agent closes the connection.
Reply rawExchange(AgentFixture& a, const std::string& bytes) {
    RawConn c(a.server.port());
    REQUIRE(c.send(bytes));
    auto resp = c.readToClose(kBound);
    REQUIRE_MESSAGE(resp.has_value(), "the agent did not close the connection");
    INFO(*resp);
    CHECK(rawResponseHeader(*resp, "connection") == "close");
    Reply r;
    r.status = rawResponseStatus(*resp);
    r.contentType = rawResponseHeader(*resp, "content-type");
    r.raw = rawResponseBody(*resp);
    r.body = json::parse(r.raw, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
}

}  // namespace

TEST_SUITE("agent.hostile") {
    TEST_CASE("%00 in a path is refused with 400 VALIDATION_FAILED, never cut short") {
        AgentFixture a;
        const std::string why = "Invalid path: it contains a NUL byte (%00)";
        auto r = get(a, "/api/ping%00");
        checkValidation(r, "INVALID_PATH");
        CHECK(r.body["message"] == why);
        r = get(a, "/api/process/abc%00/logs");
        checkValidation(r, "INVALID_PATH");
        // Refused from the head: a body that comes with it is not read.
        r = post(a, "/api/write%00", {{"path", "/tmp/x"}, {"content", "x"}});
        checkValidation(r, "INVALID_PATH");
        CHECK(get(a, "/api/ping").status == 200);
    }

    TEST_CASE("malformed HTTP is answered 400 and an oversized head 431, then closed") {
        AgentFixture a;
        checkError(rawExchange(a, "GARBAGE\r\n\r\n"), 400, "VALIDATION_FAILED");
        checkError(rawExchange(a, "GET /api/ping HTTP/1.1\r\nNo colon in this line\r\n\r\n"), 400,
                   "VALIDATION_FAILED");
        checkError(rawExchange(a,
                               "POST /api/ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "not-hex\r\n"),
                   400, "VALIDATION_FAILED");
        checkError(rawExchange(a, "GET /api/ping HTTP/1.1\r\nX-Big: " +
                                      std::string(70 * 1024, 'a') + "\r\n\r\n"),
                   431, "VALIDATION_FAILED");
        CHECK(get(a, "/api/ping").status == 200);
    }
}  // TEST_SUITE
