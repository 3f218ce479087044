// The error model (§2.1, §5) and request validation: unknown routes, malformed JSON, missing
// and mistyped fields, env names, paths and base64 content; plus the misc routes (§3.10).
#include <doctest/doctest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/agent_test_util.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using namespace sandbox::testing::agent;

namespace {
// Every route whose body is parsed as a JSON object (read/stream reports in-stream instead,
// session/create falls back to defaults).
const char* const kJsonRoutes[] = {"/api/execute", "/api/execute/stream", "/api/read",
                                   "/api/write",   "/api/delete",         "/api/rename",
                                   "/api/move",    "/api/mkdir",          "/api/list-files",
                                   "/api/exists",  "/api/session/delete"};
}  // namespace

TEST_CASE("errors: unknown routes are 404 UNKNOWN_ERROR") {
    AgentFixture a;
    struct Probe {
        const char* method;
        const char* target;
    };
    for (const Probe& p :
         {Probe{"GET", "/nope"}, Probe{"POST", "/api/nope"}, Probe{"GET", "/api/execute"},
          Probe{"POST", "/api/execute/"}, Probe{"POST", "/API/EXECUTE"},
          Probe{"DELETE", "/api/session/list"}, Probe{"PUT", "/api/write"},
          Probe{"POST", "/api/ping"}, Probe{"GET", "/api/execute/stream/x"}}) {
        CAPTURE(p.method);
        CAPTURE(p.target);
        auto r = call(a.http, p.method, p.target, "{}");
        checkError(r, 404, "UNKNOWN_ERROR");
        CHECK(r.body["message"] == "The requested endpoint was not found");
        CHECK(r.body["context"] == json::object());
        CHECK_FALSE(r.body.contains("suggestion"));
        CHECK_FALSE(r.body.contains("operation"));
    }
    // A query string does not change routing.
    CHECK(call(a.http, "GET", "/api/ping?x=1").status == 200);
}

TEST_CASE("errors: the standard envelope") {
    AgentFixture a;
    const std::string p = a.workspace() + "/x.json";
    auto r = post(a, "/api/read", {{"path", p}});
    checkError(r, 404, "FILE_NOT_FOUND");
    CHECK(r.body["message"] == "File not found: " + p);
    CHECK(r.body["context"]["path"] == p);
    CHECK(r.body["context"]["operation"] == "file.read");
    CHECK(r.body["operation"] == "file.read");
    CHECK(r.body["suggestion"] ==
          "Ensure the file exists at " + p + " before attempting to access it");
    CHECK_FALSE(r.body.contains("documentation"));

    r = post(a, "/api/execute", json::object());
    checkValidation(r, "REQUIRED");
    CHECK(r.body["suggestion"].is_string());
    CHECK_FALSE(r.body.contains("operation"));
}

TEST_CASE("errors: malformed JSON bodies are 400 VALIDATION_FAILED") {
    AgentFixture a;
    for (const char* route : kJsonRoutes) {
        for (const char* body : {"{bad", "", "   ", "[]", "\"text\"", "null", "42", "{\"a\":1}x"}) {
            CAPTURE(route);
            CAPTURE(body);
            auto r = call(a.http, "POST", route, body);
            checkValidation(r, "INVALID_JSON");
        }
    }
    // Still a working connection.
    CHECK(exec(a, "echo ok")["stdout"] == "ok");
}

TEST_CASE("errors: missing required fields") {
    AgentFixture a;
    const std::string f = a.workspace() + "/f";
    struct Case {
        const char* route;
        json body;
        const char* field;
    };
    const Case cases[] = {
        {"/api/execute", {{"sessionId", "s"}}, "command"},
        {"/api/execute/stream", json::object(), "command"},
        {"/api/read", json::object(), "path"},
        {"/api/write", {{"content", "x"}}, "path"},
        {"/api/write", {{"path", f}}, "content"},
        {"/api/delete", json::object(), "path"},
        {"/api/rename", {{"newPath", f}}, "oldPath"},
        {"/api/rename", {{"oldPath", f}}, "newPath"},
        {"/api/move", {{"destinationPath", f}}, "sourcePath"},
        {"/api/move", {{"sourcePath", f}}, "destinationPath"},
        {"/api/mkdir", {{"recursive", true}}, "path"},
        {"/api/list-files", {{"options", json::object()}}, "path"},
        {"/api/exists", json::object(), "path"},
        {"/api/session/delete", json::object(), "sessionId"},
        // null counts as absent
        {"/api/execute", {{"command", nullptr}}, "command"},
        {"/api/read", {{"path", nullptr}}, "path"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.route);
        CAPTURE(c.body.dump());
        auto r = post(a, c.route, c.body);
        checkValidation(r, "REQUIRED");
        CHECK(r.body["context"]["validationErrors"][0]["field"] == c.field);
    }
}

TEST_CASE("errors: wrong field types") {
    AgentFixture a;
    const std::string f = a.workspace() + "/f";
    struct Case {
        const char* route;
        json body;
    };
    const Case cases[] = {
        {"/api/execute", {{"command", 1}}},
        {"/api/execute", {{"command", json::array({"ls"})}}},
        {"/api/execute", {{"command", "true"}, {"env", {{"A", 1}}}}},
        {"/api/execute", {{"command", "true"}, {"env", {{"A", {{"nested", "x"}}}}}}},
        {"/api/execute", {{"command", "true"}, {"env", "A=1"}}},
        {"/api/execute", {{"command", "true"}, {"env", json::array({"A=1"})}}},
        {"/api/execute", {{"command", "true"}, {"timeoutMs", "x"}}},
        {"/api/execute", {{"command", "true"}, {"timeoutMs", -1}}},
        {"/api/execute", {{"command", "true"}, {"timeoutMs", 1.5}}},
        {"/api/execute", {{"command", "true"}, {"timeoutMs", true}}},
        {"/api/execute", {{"command", "true"}, {"background", "yes"}}},
        {"/api/execute", {{"command", "true"}, {"background", 1}}},
        {"/api/execute", {{"command", "true"}, {"cwd", 5}}},
        {"/api/execute", {{"command", "true"}, {"sessionId", 5}}},
        {"/api/execute", {{"command", "true"}, {"sessionId", json::object()}}},
        {"/api/execute/stream", {{"command", "true"}, {"env", {{"A", 1}}}}},
        {"/api/execute/stream", {{"command", "true"}, {"cwd", false}}},
        {"/api/read", {{"path", 1}}},
        {"/api/read", {{"path", f}, {"sessionId", 1}}},
        {"/api/write", {{"path", f}, {"content", 1}}},
        {"/api/write", {{"path", f}, {"content", nullptr}}},
        {"/api/write", {{"path", json::array()}, {"content", "x"}}},
        {"/api/delete", {{"path", true}}},
        {"/api/rename", {{"oldPath", f}, {"newPath", 2}}},
        {"/api/move", {{"sourcePath", 1}, {"destinationPath", f}}},
        {"/api/mkdir", {{"path", f}, {"recursive", "yes"}}},
        {"/api/list-files", {{"path", f}, {"options", 1}}},
        {"/api/list-files", {{"path", f}, {"options", {{"includeHidden", "no"}}}}},
        {"/api/exists", {{"path", 0}}},
        {"/api/session/delete", {{"sessionId", json::array()}}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.route);
        CAPTURE(c.body.dump());
        auto r = post(a, c.route, c.body);
        checkValidation(r);
        const json& errs = r.body["context"]["validationErrors"];
        REQUIRE(errs.is_array());
        CHECK((errs[0]["code"] == "INVALID_TYPE" || errs[0]["code"] == "REQUIRED"));
    }
    // A NUL byte cannot be passed to bash.
    auto r = post(a, "/api/execute", {{"command", std::string("echo a\0b", 8)}});
    checkValidation(r, "INVALID_COMMAND");
    r = post(a, "/api/execute/stream", {{"command", std::string("echo a\0b", 8)}});
    checkValidation(r, "INVALID_COMMAND");
    // Nothing was run or written.
    CHECK_FALSE(pathExists(f));
    // Accepted forms: integral floats, null env values, zero timeout (no timeout).
    CHECK(exec(a, "echo ok", std::nullopt, {{"timeoutMs", 5000.0}})["stdout"] == "ok");
    CHECK(exec(a, "echo ok", std::nullopt, {{"timeoutMs", 0}})["stdout"] == "ok");
    CHECK(exec(a, "echo ${SBXT_A-unset}", std::nullopt,
               {{"env", {{"SBXT_A", nullptr}}}})["stdout"] == "unset");
}

TEST_CASE("errors: invalid environment variable names") {
    AgentFixture a;
    for (const char* name : {"1A", "A-B", "A B", "", "A=B", "ä", "$A"}) {
        CAPTURE(name);
        json env = {{name, "v"}};
        auto r = post(a, "/api/execute", {{"command", "true"}, {"env", env}});
        checkValidation(r, "INVALID_ENV_NAME");
        CHECK(r.body["message"] == std::string("Invalid environment variable name: ") + name);
        r = post(a, "/api/execute", {{"command", "true"}, {"env", env}, {"background", true}});
        checkValidation(r, "INVALID_ENV_NAME");
        r = post(a, "/api/execute",
                 {{"command", "true"}, {"env", env}, {"sessionId", "__DISABLE_SESSION__"}});
        checkValidation(r, "INVALID_ENV_NAME");
        r = post(a, "/api/execute/stream", {{"command", "true"}, {"env", env}});
        checkValidation(r, "INVALID_ENV_NAME");
    }
    // Valid names.
    CHECK(exec(a, "echo $_x$A1$abc_DEF", std::nullopt,
               {{"env", {{"_x", "1"}, {"A1", "2"}, {"abc_DEF", "3"}}}})["stdout"] == "123");
}

TEST_CASE("errors: path validation on every file route") {
    AgentFixture a;
    const std::string ok = a.workspace() + "/ok";
    const std::string nul = std::string("/tmp/a\0b", 8);
    const std::string tooLong = "/" + std::string(4096, 'a');  // 4097 characters
    struct Bad {
        std::string path;
        std::string reason;
    };
    const Bad bads[] = {{"", "Path must be a non-empty string"},
                        {nul, "Path contains null bytes"},
                        {tooLong, "Path too long (max 4096 characters)"}};
    auto bodies = [&](const std::string& p) {
        return std::vector<std::pair<std::string, json>>{
            {"/api/read", {{"path", p}}},
            {"/api/write", {{"path", p}, {"content", "x"}}},
            {"/api/delete", {{"path", p}}},
            {"/api/mkdir", {{"path", p}}},
            {"/api/list-files", {{"path", p}}},
            {"/api/exists", {{"path", p}}},
            {"/api/rename", {{"oldPath", p}, {"newPath", ok}}},
            {"/api/rename", {{"oldPath", ok}, {"newPath", p}}},
            {"/api/move", {{"sourcePath", p}, {"destinationPath", ok}}},
            {"/api/move", {{"sourcePath", ok}, {"destinationPath", p}}},
        };
    };
    for (const auto& bad : bads) {
        for (const auto& [route, body] : bodies(bad.path)) {
            CAPTURE(route);
            CAPTURE(bad.reason);
            auto r = post(a, route, body);
            checkValidation(r, "INVALID_PATH");
            CHECK(r.body["context"]["validationErrors"][0]["field"] == "path");
            CHECK(r.body["context"]["validationErrors"][0]["message"] == bad.reason);
            CHECK(r.body["message"] == "Invalid path format for '" + bad.path + "': " + bad.reason);
        }
    }
    // Up to 4096 characters passes validation: 4095 is simply not found; 4096 (PATH_MAX with
    // its NUL) fails in the filesystem, not in validation.
    std::string longPath = "/";
    while (longPath.size() < 4093) longPath += "a/";
    longPath += "bc";
    REQUIRE(longPath.size() == 4095);
    checkError(post(a, "/api/read", {{"path", longPath}}), 404, "FILE_NOT_FOUND");
    CHECK(post(a, "/api/exists", {{"path", longPath}}).body["exists"] == false);
    longPath += "c";
    auto r = post(a, "/api/read", {{"path", longPath}});
    CHECK(r.status >= 400);
    CHECK(r.body.value("code", "") != "VALIDATION_FAILED");
}

TEST_CASE("errors: invalid base64 content on write") {
    AgentFixture a;
    const std::string p = a.workspace() + "/b64.bin";
    for (const char* content : {"ab$=", "abc", "YWJj\n", "YW Jj", "-_8=", "YWJj=", "=YWJ", "YW=j",
                                "a===", "\xC3\xA9\xC3\xA9"}) {
        CAPTURE(content);
        auto r = post(a, "/api/write", {{"path", p}, {"content", content}, {"encoding", "base64"}});
        checkValidation(r, "INVALID_BASE64");
        const json& e = r.body["context"]["validationErrors"][0];
        CHECK(e["field"] == "content");
        CHECK(e["message"] == "Invalid base64 characters");
        CHECK_FALSE(pathExists(p));
    }
    // The same strings are fine as text.
    REQUIRE(post(a, "/api/write", {{"path", p}, {"content", "ab$="}}).status == 200);
    CHECK(readFile(p) == "ab$=");
}

TEST_CASE("misc routes: /, ping, version") {
    AgentFixture a;
    auto r = get(a, "/");
    CHECK(r.status == 200);
    CHECK(r.contentType.rfind("text/plain", 0) == 0);
    CHECK_FALSE(r.raw.empty());

    r = get(a, "/api/ping");
    REQUIRE(r.status == 200);
    CHECK(r.contentType == "application/json");
    CHECK(r.body["success"] == true);
    CHECK(r.body["status"] == "healthy");
    CHECK(isIsoTimestamp(r.body["timestamp"]));

    r = get(a, "/api/version");
    REQUIRE(r.status == 200);
    CHECK(r.body["success"] == true);
    CHECK(r.body["version"].is_string());
    CHECK(isIsoTimestamp(r.body["timestamp"]));
    if (!std::getenv("SANDBOX_VERSION")) CHECK(r.body["version"] == "unknown");

    sandbox::testing::TempDir dir;
    sandbox::testing::ServerProcess server(sandbox::testing::binPath("sandbox-agent"),
                                           {"--workspace", dir.path()}, {"SANDBOX_VERSION=9.8.7"});
    auto http = server.connect();
    CHECK(call(http, "GET", "/api/version").body["version"] == "9.8.7");
}

TEST_CASE("env names reserved by the session driver are refused") {
    sandbox::testing::AgentFixture a;
    auto r = a.post("/api/execute", R"({"command":"echo x","env":{"__sb_s":"1"}})");
    CHECK(r.status == 400);
    auto j = nlohmann::json::parse(r.body);
    CHECK(j["code"] == "VALIDATION_FAILED");
    CHECK(j["context"]["validationErrors"][0]["code"] == "INVALID_ENV_NAME");
    // The process tag too, on every route (a kill finds a command's processes by it), in both
    // modes and for streams.
    for (const char* route : {"/api/execute", "/api/execute/stream"})
        for (const char* sid : {"default", "__DISABLE_SESSION__"}) {
            CAPTURE(route);
            CAPTURE(sid);
            nlohmann::json body = {{"command", "echo x"},
                                   {"sessionId", sid},
                                   {"env", {{"SANDBOX_PROCESS_TAG", "someone-else"}}}};
            auto t = a.post(route, body.dump());
            CHECK(t.status == 400);
            CHECK(nlohmann::json::parse(t.body)["context"]["validationErrors"][0]["code"] ==
                  "INVALID_ENV_NAME");
        }
    // The session still works and reports exit codes.
    r = a.post("/api/execute", R"({"command":"exit_code_test() { return 3; }; exit_code_test"})");
    CHECK(nlohmann::json::parse(r.body)["exitCode"] == 3);
}
