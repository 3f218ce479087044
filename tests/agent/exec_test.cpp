#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;

TEST_CASE("execute: session state persists; per-command env and cwd do not") {
    AgentFixture a;
    auto r = a.post("/api/execute", R"({"command":"cd /; export FOO=bar; f(){ echo fn; }"})");
    CHECK(r.status == 200);
    r = a.post("/api/execute", R"({"command":"pwd; echo $FOO; f"})");
    auto j = json::parse(r.body);
    CHECK(j["stdout"] == "/\nbar\nfn");
    CHECK(j["success"] == true);
    CHECK_FALSE(j.contains("sessionId"));

    r = a.post("/api/execute", R"({"command":"pwd; echo $X","cwd":"/tmp","env":{"X":"1"}})");
    CHECK(json::parse(r.body)["stdout"] == "/tmp\n1");
    r = a.post("/api/execute", R"({"command":"pwd; echo \"[$X]\""})");
    CHECK(json::parse(r.body)["stdout"] == "/\n[]");
}
