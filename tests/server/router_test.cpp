// The route table shared by sandbox-agent and sandboxd (server/router.hpp): matching, parameters,
// not found vs method not allowed, trailing slashes and percent-encoding. Pure, no server.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "server/router.hpp"

using sandbox::server::RouteOutcome;
using sandbox::server::Router;
using sandbox::server::RouteTable;

namespace {

// A router whose handlers are their own names, so a match says which route won.
Router<std::string> processRoutes() {
    Router<std::string> r;
    r.add("GET", "/", "root");
    r.add("GET", "/api/ping", "ping");
    r.add("POST", "/api/process/start", "start");
    r.add("GET", "/api/process/list", "list");
    r.add("DELETE", "/api/process/kill-all", "killAll");
    r.add("GET", "/api/process/{id}", "get");
    r.add("DELETE", "/api/process/{id}", "kill");
    r.add("GET", "/api/process/{id}/logs", "logs");
    r.add("GET", "/api/process/{id}/stream", "stream");
    return r;
}

std::string found(const Router<std::string>& r, const char* method, const char* path) {
    auto m = r.match(method, path);
    return m.outcome == RouteOutcome::Found ? *m.handler : std::string("-");
}

}  // namespace

TEST_CASE("router: literal routes match exactly, method and path") {
    auto r = processRoutes();
    CHECK(found(r, "GET", "/") == "root");
    CHECK(found(r, "GET", "/api/ping") == "ping");
    CHECK(found(r, "POST", "/api/process/start") == "start");
    // Case-sensitive, in the path and in the method.
    CHECK(r.match("GET", "/API/PING").outcome == RouteOutcome::NotFound);
    CHECK(r.match("get", "/api/ping").outcome == RouteOutcome::MethodNotAllowed);
    // Not a prefix match either way.
    CHECK(r.match("GET", "/api").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "/api/ping/x").outcome == RouteOutcome::NotFound);
    // Only absolute paths route.
    CHECK(r.match("GET", "").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "*").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "api/ping").outcome == RouteOutcome::NotFound);
}

TEST_CASE("router: parameters capture one non-empty segment, raw") {
    auto r = processRoutes();
    auto m = r.match("GET", "/api/process/proc_1/logs");
    REQUIRE(m.outcome == RouteOutcome::Found);
    CHECK(*m.handler == "logs");
    CHECK(m.params["id"] == "proc_1");
    CHECK(m.params["other"] == "");
    CHECK(m.params.size() == 1);
    // An empty segment is no parameter.
    CHECK(r.match("GET", "/api/process/").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "/api/process//logs").outcome == RouteOutcome::NotFound);
    // Percent-encoding stays as sent: %2F does not split a segment, %XX is not decoded.
    m = r.match("GET", "/api/process/a%2Fb");
    REQUIRE(m.outcome == RouteOutcome::Found);
    CHECK(m.params["id"] == "a%2Fb");
    CHECK(r.match("GET", "/api/process/a%2Fb/logs").params["id"] == "a%2Fb");
    CHECK(r.match("GET", "/api/p%72ocess/list").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "/api/ping%2F").outcome == RouteOutcome::NotFound);
}

TEST_CASE("router: trailing slashes are strict") {
    auto r = processRoutes();
    CHECK(r.match("GET", "/api/ping/").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "/api/process/x/").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "/api/process/x/logs/").outcome == RouteOutcome::NotFound);
    CHECK(r.match("GET", "//").outcome == RouteOutcome::NotFound);
}

TEST_CASE("router: a literal wins over a parameter, among routes allowing the method") {
    auto r = processRoutes();
    CHECK(found(r, "GET", "/api/process/list") == "list");
    CHECK(found(r, "DELETE", "/api/process/kill-all") == "killAll");
    // The literal route does not take GET: the parameter route does, with the literal as id.
    auto m = r.match("GET", "/api/process/kill-all");
    REQUIRE(m.outcome == RouteOutcome::Found);
    CHECK(*m.handler == "get");
    CHECK(m.params["id"] == "kill-all");
    CHECK(found(r, "DELETE", "/api/process/list") == "kill");
    CHECK(found(r, "GET", "/api/process/start") == "get");
    // Leftmost difference decides: /a/{x} over /{y}/b for /a/b, in either order of adding.
    for (bool literalFirst : {true, false}) {
        Router<std::string> t;
        if (literalFirst) t.add("GET", "/a/{x}", "ax");
        t.add("GET", "/{y}/b", "yb");
        if (!literalFirst) t.add("GET", "/a/{x}", "ax");
        CHECK(found(t, "GET", "/a/b") == "ax");
        CHECK(found(t, "GET", "/c/b") == "yb");
    }
}

TEST_CASE("router: 404 when no pattern matches the path, 405 when none takes the method") {
    auto r = processRoutes();
    auto m = r.match("POST", "/api/ping");
    CHECK(m.outcome == RouteOutcome::MethodNotAllowed);
    CHECK(m.handler == nullptr);
    CHECK(m.allowed == std::vector<std::string>{"GET"});
    // Every route matching the path counts, literal or not.
    m = r.match("POST", "/api/process/list");
    CHECK(m.outcome == RouteOutcome::MethodNotAllowed);
    CHECK(m.allowed == std::vector<std::string>{"DELETE", "GET"});
    m = r.match("PUT", "/api/process/x/logs");
    CHECK(m.outcome == RouteOutcome::MethodNotAllowed);
    CHECK(m.allowed == std::vector<std::string>{"GET"});
    m = r.match("GET", "/api/nope");
    CHECK(m.outcome == RouteOutcome::NotFound);
    CHECK(m.allowed.empty());
    CHECK(r.match("OPTIONS", "/api/nope").outcome == RouteOutcome::NotFound);
}

TEST_CASE("router: several methods, and any method") {
    Router<std::string> r;
    r.add("GET,HEAD", "/health", "health");
    r.add("*", "/v1/sandbox/{id}/agent/{path*}", "agent");
    CHECK(found(r, "GET", "/health") == "health");
    CHECK(found(r, "HEAD", "/health") == "health");
    auto m = r.match("POST", "/health");
    CHECK(m.outcome == RouteOutcome::MethodNotAllowed);
    CHECK(m.allowed == std::vector<std::string>{"GET", "HEAD"});
    for (const char* method : {"GET", "POST", "DELETE", "PATCH", "OPTIONS"})
        CHECK(found(r, method, "/v1/sandbox/abc/agent/api/ping") == "agent");
}

TEST_CASE("router: a tail takes the rest of the path, possibly empty") {
    Router<std::string> r;
    r.add("GET", "/file", "bare");
    r.add("GET", "/file/{path*}", "file");
    r.add("*", "/v1/sandbox/{id}/agent/{path*}", "agent");
    r.add("*", "/v1/sandbox/{id}/{sub*}", "sandbox");
    r.add("DELETE", "/v1/sandbox/{id}", "destroy");

    auto m = r.match("GET", "/file/a/b%2Fc/");
    REQUIRE(m.outcome == RouteOutcome::Found);
    CHECK(*m.handler == "file");
    CHECK(m.params["path"] == "a/b%2Fc/");
    m = r.match("GET", "/file/");
    CHECK(*m.handler == "file");
    CHECK(m.params["path"] == "");
    CHECK(found(r, "GET", "/file") == "bare");
    CHECK(r.match("GET", "/files").outcome == RouteOutcome::NotFound);

    // A literal segment wins over a tail at the same place.
    m = r.match("POST", "/v1/sandbox/abc/agent/api/execute");
    CHECK(*m.handler == "agent");
    CHECK(m.params["id"] == "abc");
    CHECK(m.params["path"] == "api/execute");
    CHECK(r.match("GET", "/v1/sandbox/abc/agent/").params["path"] == "");
    m = r.match("GET", "/v1/sandbox/abc/agent");
    CHECK(*m.handler == "sandbox");
    CHECK(m.params["sub"] == "agent");
    m = r.match("GET", "/v1/sandbox/abc/");
    CHECK(*m.handler == "sandbox");
    CHECK(m.params["sub"] == "");
    // No tail without the slash before it.
    m = r.match("GET", "/v1/sandbox/abc");
    CHECK(m.outcome == RouteOutcome::MethodNotAllowed);
    CHECK(m.allowed == std::vector<std::string>{"DELETE"});
    CHECK(found(r, "DELETE", "/v1/sandbox/abc") == "destroy");
    CHECK(r.match("DELETE", "/v1/sandbox/").outcome == RouteOutcome::NotFound);
}

TEST_CASE("router: parameters added by the server") {
    auto m = processRoutes().match("GET", "/api/process/p1");
    m.params.set("sandbox", "abc");
    m.params.set("id", "p2");
    CHECK(m.params["sandbox"] == "abc");
    CHECK(m.params["id"] == "p2");
    CHECK(m.params.size() == 2);
}

TEST_CASE("router: malformed patterns and repeated routes are refused when declared") {
    RouteTable t;
    CHECK_THROWS_AS(t.add("GET", "api/ping"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", ""), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", "/a/{id"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", "/a/x{id}"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", "/a/{}"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", "/a/{*}"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", "/a/{x-y}"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", "/a/{rest*}/b"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET", "/a/{id}/{id}"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("GET,", "/a"), std::invalid_argument);
    CHECK(t.size() == 0);

    t.add("GET", "/a/{id}");
    t.add("DELETE", "/a/{id}");  // another method on the same pattern
    t.add("GET", "/a/b");        // a literal beside a parameter
    CHECK_THROWS_AS(t.add("GET", "/a/{other}"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("HEAD,DELETE", "/a/{x}"), std::invalid_argument);
    CHECK_THROWS_AS(t.add("*", "/a/{x}"), std::invalid_argument);
    CHECK(t.size() == 3);
}
