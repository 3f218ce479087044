// sandboxd: routes, ids, auth, errors (spec §1–§5, §7, §13.1, §13.4, §13.17), running,
// destroy and the agent passthrough.
#include <regex>

#include "daemon/daemon_test_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;
using sandbox::SseEvent;
using sandbox::SseParser;

TEST_SUITE("daemon.routes") {
    TEST_CASE("GET /health answers {\"ok\":true, containerApi, isolation} without auth") {
        DaemonFixture d("secret");
        auto r = call(d.http, "GET", "/health");
        CHECK(r.status == 200);
        CHECK(r.contentType == "application/json");
        // "ok" first, as the bridge's; then where each sandbox's container API is (the SDK tells
        // sandboxd from Cloudflare's bridge by it) and what isolates this host's sandboxes.
        CHECK(r.raw.rfind(
                  R"({"ok":true,"containerApi":"/v1/sandbox/{id}/agent","isolation":{"mode":")",
                  0) == 0);
        const json& iso = r.body["isolation"];
        CHECK(iso["mode"] == "bwrap");
        CHECK(iso["seccomp"] == true);
        CHECK(iso["identity"].get<std::string>().find(::geteuid() == 0 ? "per-sandbox host uids"
                                                                       : "sandboxd's uid") == 0);
        CHECK(iso["cgroups"].is_string());
        CHECK(iso["workspace"].is_string());
        // Only the exact path and GET.
        checkNotFoundText(call(d.http, "GET", "/health/"));
        checkNotFoundText(call(d.http, "POST", "/health"));
    }

    TEST_CASE("POST /v1/sandbox returns a fresh 26-character base32 id") {
        DaemonFixture d;
        static const std::regex re("^[a-z2-7]{26}$");
        std::set<std::string> seen;
        for (int i = 0; i < 20; ++i) {
            auto r = call(d.http, "POST", "/v1/sandbox");
            REQUIRE(r.status == 200);
            CHECK(r.contentType == "application/json");
            REQUIRE(r.body.is_object());
            CHECK(r.body.size() == 1);
            std::string id = r.body["id"].get<std::string>();
            CHECK(std::regex_match(id, re));
            // 128 bits in 26 characters: the last one carries 3 bits and 2 zero pad bits.
            CHECK(std::string("aeimquy4").find(id.back()) != std::string::npos);
            CHECK(r.raw == "{\"id\":\"" + id + "\"}");
            seen.insert(id);
        }
        CHECK(seen.size() == 20);
        // No sandbox is made for a new id.
        CHECK(agentPids(d.pid()).empty());
    }

    TEST_CASE("bad sandbox ids give 400 Invalid sandbox ID format, before auth") {
        DaemonFixture d("secret");
        client::HeaderList auth{{"Authorization", "Bearer secret"}};
        std::vector<std::string> bad = {"ABCDEF",
                                        "abC",
                                        "%61bc",
                                        std::string(129, 'a'),
                                        "my-sandbox_01",
                                        "abc0189",
                                        "foo;rm%20-rf%20%2F",
                                        "..%2Fetc",
                                        "abc%20",
                                        "a.b"};
        for (const auto& id : bad) {
            CAPTURE(id);
            for (const auto* sub : {"/running", "/exec", "/file/workspace/a", ""}) {
                CAPTURE(sub);
                for (const auto& h : {client::HeaderList{}, auth}) {
                    std::string method = std::string(sub) == "/exec" ? "POST"
                                         : *sub                      ? "GET"
                                                                     : "DELETE";
                    checkBridgeError(call(d.http, method, sandboxPath(id, sub), "{}", h), 400,
                                     "invalid_request", "Invalid sandbox ID format");
                }
            }
        }
        // 128 characters is the longest valid id (MW-12).
        std::string longest(128, 'a');
        auto r = call(d.http, "GET", sandboxPath(longest, "/running"), {}, auth);
        CHECK(r.status == 200);
        CHECK(r.raw == R"({"running":true})");
        auto e = exec(d.http, longest, json{{"argv", {"echo", "long id"}}}, auth);
        CHECK(e.out == "long id\n");
        CHECK(e.exitCode == 0);
        CHECK(call(d.http, "DELETE", sandboxPath(longest), {}, auth).status == 204);
    }

    TEST_CASE("auth with a key: bearer token, case-insensitive prefix, exact token") {
        DaemonFixture d("s3cr3t-key");
        const std::string unauthorized = R"({"error":"Unauthorized","code":"unauthorized"})";
        auto check401 = [&](const Reply& r) {
            INFO(r.raw);
            CHECK(r.status == 401);
            CHECK(r.contentType == "application/json");
            CHECK(r.raw == unauthorized);
            CHECK_FALSE(r.header("www-authenticate"));
        };
        std::string id = "authtest";
        std::vector<std::pair<std::string, std::string>> routes = {
            {"POST", "/v1/sandbox"},
            {"GET", sandboxPath(id, "/running")},
            {"POST", sandboxPath(id, "/exec")},
            {"GET", sandboxPath(id, "/file/workspace/x")},
            {"PUT", sandboxPath(id, "/file/workspace/x")},
            {"DELETE", sandboxPath(id)},
            {"GET", sandboxPath(id, "/agent/api/ping")},
            {"GET", sandboxPath(id, "/no-such-route")},
        };
        for (const auto& [method, target] : routes) {
            CAPTURE(method);
            CAPTURE(target);
            check401(call(d.http, method, target, "{}"));
            check401(call(d.http, method, target, "{}", {{"Authorization", "Bearer wrong"}}));
            check401(call(d.http, method, target, "{}", {{"Authorization", "Bearer s3cr3t-ke"}}));
            check401(call(d.http, method, target, "{}", {{"Authorization", "Bearer s3cr3t-keyy"}}));
            check401(call(d.http, method, target, "{}", {{"Authorization", "Bearer  s3cr3t-key"}}));
            check401(call(d.http, method, target, "{}", {{"Authorization", "s3cr3t-key"}}));
            check401(call(d.http, method, target, "{}", {{"Authorization", "Basic s3cr3t-key"}}));
            check401(call(d.http, method, target, "{}", {{"Authorization", "Bearer"}}));
        }
        // Nothing was started by unauthenticated requests.
        CHECK(agentPids(d.pid()).empty());
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + id));

        for (const auto* prefix : {"Bearer ", "bearer ", "BEARER ", "BeArEr "}) {
            CAPTURE(prefix);
            client::HeaderList h{{"Authorization", std::string(prefix) + "s3cr3t-key"}};
            auto created = call(d.http, "POST", "/v1/sandbox", {}, h);
            CHECK(created.status == 200);
            auto r = call(d.http, "GET", sandboxPath(id, "/running"), {}, h);
            CHECK(r.status == 200);
            CHECK(r.raw == R"({"running":true})");
        }
        client::HeaderList ok{{"Authorization", "Bearer s3cr3t-key"}};
        auto e = exec(d.http, id, json{{"argv", {"echo", "authed"}}}, ok);
        CHECK(e.out == "authed\n");
        auto ping = call(d.http, "GET", sandboxPath(id, "/agent/api/ping"), {}, ok);
        CHECK(ping.status == 200);

        // Two Authorization headers (even both right) are joined by ", " and fail (§2.5).
        std::string twice = "GET " + sandboxPath(id, "/running") +
                            " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cr3t-key\r\n"
                            "Authorization: Bearer s3cr3t-key\r\nConnection: close\r\n\r\n";
        std::string resp = rawHttp(d.server.port(), twice);
        CHECK(rawStatus(resp) == 401);
        CHECK(rawBody(resp) == unauthorized);
        std::string once = "GET " + sandboxPath(id, "/running") +
                           " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cr3t-key\r\n"
                           "Connection: close\r\n\r\n";
        CHECK(rawStatus(rawHttp(d.server.port(), once)) == 200);

        // DELETE needs the token too, then works.
        check401(call(d.http, "DELETE", sandboxPath(id)));
        CHECK(pathExists(d.stateDir() + "/sandboxes/" + id));
        CHECK(call(d.http, "DELETE", sandboxPath(id), {}, ok).status == 204);
    }

    TEST_CASE("no key: no auth on any route, and a start-up warning") {
        DaemonFixture d;
        CHECK(call(d.http, "POST", "/v1/sandbox").status == 200);
        CHECK(call(d.http, "GET", sandboxPath("noauth", "/running")).status == 200);
        // A token is ignored, whatever it is.
        CHECK(call(d.http, "GET", sandboxPath("noauth", "/running"), {},
                   {{"Authorization", "Bearer x"}})
                  .status == 200);
        CHECK(d.log().find("authentication is disabled") != std::string::npos);
    }

    TEST_CASE("unknown routes and methods give the plain-text 404") {
        DaemonFixture d;
        std::string id = "routes";
        checkNotFoundText(call(d.http, "GET", "/"));
        checkNotFoundText(call(d.http, "GET", "/nope"));
        checkNotFoundText(call(d.http, "GET", "/sandbox/x/running"));  // MW-16: no /v1
        checkNotFoundText(call(d.http, "GET", "/v1/sandbox"));
        checkNotFoundText(call(d.http, "GET", sandboxPath(id)));
        checkNotFoundText(call(d.http, "GET", sandboxPath(id, "/nope")));
        checkNotFoundText(call(d.http, "GET", sandboxPath(id, "/exec")));
        checkNotFoundText(call(d.http, "POST", sandboxPath(id, "/running")));
        checkNotFoundText(call(d.http, "DELETE", sandboxPath(id, "/file/workspace/a")));
        // Routing is strict about trailing slashes (§1.2).
        checkNotFoundText(call(d.http, "GET", sandboxPath(id, "/running/")));
        checkNotFoundText(call(d.http, "POST", sandboxPath(id, "/exec/"), R"({"argv":["true"]})"));
    }

    TEST_CASE("GET /running answers {\"running\":true} and starts the sandbox") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        CHECK(agentPids(d.pid()).empty());
        auto r = call(d.http, "GET", sandboxPath(id, "/running"));
        CHECK(r.status == 200);
        CHECK(r.contentType == "application/json");
        CHECK(r.raw == R"({"running":true})");
        CHECK(agentPids(d.pid()).size() == 1);
        CHECK(call(d.http, "GET", sandboxPath(id, "/running")).raw == R"({"running":true})");
        CHECK(agentPids(d.pid()).size() == 1);  // the same sandbox, not a second one
    }

    TEST_CASE("DELETE /v1/sandbox/<id>: 204 for unknown ids, kills and removes a live sandbox") {
        DaemonFixture d;
        auto unknown = call(d.http, "DELETE", sandboxPath("neverused"));
        CHECK(unknown.status == 204);
        CHECK(unknown.raw.empty());
        // No Content-Type on a 204 (as the reference).
        CHECK_MESSAGE(!unknown.header("content-type"),
                      "204 carries Content-Type: " << unknown.contentType);
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/neverused"));
        CHECK(agentPids(d.pid()).empty());

        std::string id = newSandbox(d.http);
        sh(d.http, id, "echo kept > /workspace/file.txt");
        std::string root = d.stateDir() + "/sandboxes/" + id;
        CHECK(readFile(d.workspace(id) + "/file.txt") == "kept\n");
        auto agents = agentPids(d.pid());
        REQUIRE(agents.size() == 1);

        auto r = call(d.http, "DELETE", sandboxPath(id));
        CHECK(r.status == 204);
        CHECK(r.raw.empty());
        CHECK_FALSE(pathExists(root));
        CHECK(waitFor([&] { return processGone(agents[0]); }));
        CHECK(descendants(d.pid()).empty());
        // Deleting again is a no-op 204; the id can be reused and gets a fresh, empty workspace.
        CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
        auto again = run(d.http, id, {"sh", "-c", "ls -A /workspace; echo end"});
        CHECK(again.out == "end\n");
        CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
    }

    TEST_CASE("agent passthrough: JSON and SSE container routes under /agent/") {
        DaemonFixture d("k");
        client::HeaderList auth{{"Authorization", "Bearer k"}};
        std::string id = newSandbox(d.http, auth);

        auto ping = call(d.http, "GET", sandboxPath(id, "/agent/api/ping"), {}, auth);
        CHECK(ping.status == 200);
        CHECK(ping.contentType.find("application/json") == 0);

        auto ex = call(d.http, "POST", sandboxPath(id, "/agent/api/execute"),
                       json{{"command", "echo via-agent; echo err >&2; false"}}.dump(), auth);
        INFO(ex.raw);
        CHECK(ex.status == 200);
        REQUIRE(ex.body.is_object());
        CHECK(ex.body["stdout"].get<std::string>().find("via-agent") == 0);
        CHECK(ex.body["stderr"].get<std::string>().find("err") == 0);
        CHECK(ex.body["exitCode"] == 1);

        // Files written through the agent are the bridge's files.
        auto w = call(d.http, "POST", sandboxPath(id, "/agent/api/write"),
                      json{{"path", "/workspace/agent.txt"}, {"content", "from the agent"}}.dump(),
                      auth);
        CHECK(w.status == 200);
        auto rd = call(d.http, "GET", sandboxPath(id, "/file/workspace/agent.txt"), {}, auth);
        CHECK(rd.raw == "from the agent");

        // An agent error keeps its status and body.
        auto bad = call(d.http, "POST", sandboxPath(id, "/agent/api/execute"), "not json", auth);
        CHECK(bad.status == 400);
        CHECK(bad.body.is_object());

        // SSE: streamed through, with its content type.
        std::string raw;
        std::vector<json> events;
        SseParser parser;
        auto resp = d.http.stream("POST", sandboxPath(id, "/agent/api/execute/stream"),
                                  json{{"command", "echo one; echo two"}}.dump(), auth,
                                  [&](std::string_view chunk) {
                                      raw.append(chunk);
                                      parser.feed(chunk, [&](SseEvent&& e) {
                                          events.push_back(json::parse(e.data, nullptr, false));
                                      });
                                      return true;
                                  });
        INFO(raw);
        CHECK(resp.status == 200);
        CHECK(resp.header("content-type").value_or("").find("text/event-stream") == 0);
        REQUIRE(events.size() >= 3);
        CHECK(events.front()["type"] == "start");
        CHECK(events.back()["type"] == "complete");
        CHECK(events.back()["exitCode"] == 0);
        std::string out;
        for (const auto& e : events)
            if (e["type"] == "stdout") out += e["data"].get<std::string>();
        CHECK(out == "one\ntwo\n");

        // Unknown agent routes: the agent's own 404.
        auto missing = call(d.http, "GET", sandboxPath(id, "/agent/api/no-such-thing"), {}, auth);
        CHECK(missing.status == 404);
        // The passthrough also needs the token.
        CHECK(call(d.http, "GET", sandboxPath(id, "/agent/api/ping")).status == 401);
    }

    TEST_CASE("--isolation none: the same API on a plain child, long ids included") {
        DaemonFixture d({}, {"--isolation", "none"});
        CHECK(d.log().find("NOT isolated") != std::string::npos);
        for (const std::string& id : {newSandbox(d.http), std::string(128, 'b')}) {
            CAPTURE(id);
            auto r = run(d.http, id, {"sh", "-c", "echo hi; pwd"});
            INFO(r.describe());
            CHECK(r.wellFormed());
            CHECK(r.out.rfind("hi\n", 0) == 0);
            CHECK(call(d.http, "PUT", sandboxPath(id, "/file/workspace/x.txt"), "hello").status ==
                  200);
            CHECK(call(d.http, "GET", sandboxPath(id, "/file/workspace/x.txt")).raw == "hello");
            CHECK(call(d.http, "GET", sandboxPath(id, "/running")).raw == R"({"running":true})");
            CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
            CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + id));
        }
        CHECK(waitFor([&] { return descendants(d.pid()).empty(); }));
    }

    TEST_CASE("an agent that cannot start: 502 pool_error, and the daemon lives on") {
        DaemonFixture d({}, {"--agent", "/bin/false"});
        std::string id = newSandbox(d.http);
        auto check502 = [](const Reply& r) {
            INFO(r.raw);
            CHECK(r.status == 502);
            CHECK(r.contentType == "application/json");
            REQUIRE(r.body.is_object());
            CHECK(r.body.size() == 2);
            CHECK(r.body["code"] == "pool_error");
            CHECK(r.body["error"].get<std::string>().rfind("pool error: ", 0) == 0);
        };
        check502(call(d.http, "POST", sandboxPath(id, "/exec"), R"({"argv":["true"]})"));
        check502(call(d.http, "GET", sandboxPath(id, "/running")));
        check502(call(d.http, "GET", sandboxPath(id, "/file/workspace/x")));
        check502(call(d.http, "PUT", sandboxPath(id, "/file/workspace/x"), "x"));
        check502(call(d.http, "GET", sandboxPath(id, "/agent/api/ping")));
        // Validation errors still come first for the bridge's own checks.
        CHECK(call(d.http, "POST", sandboxPath(id, "/exec"), "{}").status == 400);
        CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
        CHECK(call(d.http, "GET", "/health").status == 200);
        CHECK(waitFor([&] { return descendants(d.pid()).empty(); }));
    }

}  // TEST_SUITE
