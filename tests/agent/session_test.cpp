// Sessions (§3.1, §9.1): create/list/delete, the context session id (§2.2), state persistence
// and isolation, and what a delete does to the commands a session started.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "agent/agent_test_util.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using namespace sandbox::testing::agent;

TEST_CASE("session create: response shape, generated ids, defaults for a bad body") {
    AgentFixture a;
    auto r = post(a, "/api/session/create", {{"id", "s1"}});
    REQUIRE(r.status == 200);
    CHECK(r.contentType == "application/json");
    CHECK(r.body["success"] == true);
    CHECK(r.body["data"].is_object());
    CHECK(r.body["data"]["id"] == "s1");
    CHECK(r.body.contains("containerPlacementId"));
    CHECK(r.body["containerPlacementId"].is_null());
    CHECK(isIsoTimestamp(r.body["timestamp"]));

    // No id, an empty id, an empty body and unparsable JSON all get a generated id.
    const std::regex idRe(R"(^session_\d+_[0-9a-f]{12}$)");
    for (const char* body : {"{}", R"({"id":""})", "", "{not json", "[1,2]"}) {
        CAPTURE(body);
        auto g = postRaw(a, "/api/session/create", body);
        REQUIRE(g.status == 200);
        CHECK(std::regex_match(g.body["data"].value("id", ""), idRe));
    }
    // Wrong field types are rejected (stricter than the reference).
    checkValidation(post(a, "/api/session/create", {{"id", 5}}), "INVALID_TYPE");
    checkValidation(post(a, "/api/session/create", {{"env", {{"A", 1}}}}), "INVALID_TYPE");
    checkValidation(post(a, "/api/session/create", {{"commandTimeoutMs", "x"}}), "INVALID_TYPE");
}

TEST_CASE("session create: duplicate id is 409; a dead session is replaced") {
    AgentFixture a;
    REQUIRE(post(a, "/api/session/create", {{"id", "dup"}}).status == 200);
    auto r = post(a, "/api/session/create", {{"id", "dup"}});
    checkError(r, 409, "SESSION_ALREADY_EXISTS");
    CHECK(r.body["context"]["sessionId"] == "dup");
    REQUIRE(r.body["context"].contains("containerPlacementId"));
    CHECK(r.body["context"]["containerPlacementId"].is_null());

    // An implicitly created session counts too.
    exec(a, "true", "implicit");
    checkError(post(a, "/api/session/create", {{"id", "implicit"}}), 409, "SESSION_ALREADY_EXISTS");
    exec(a, "true");
    checkError(post(a, "/api/session/create", {{"id", "default"}}), 409, "SESSION_ALREADY_EXISTS");

    // A session whose shell exited is replaced by create.
    exec(a, "export OLD=1", "dup");
    checkError(post(a, "/api/execute", {{"command", "exit 1"}, {"sessionId", "dup"}}), 410,
               "SESSION_TERMINATED");
    r = post(a, "/api/session/create", {{"id", "dup"}, {"env", {{"NEW", "2"}}}});
    CHECK(r.status == 200);
    CHECK(out(a, "echo \"$OLD|$NEW\"", "dup") == "|2");
}

TEST_CASE("session create: env, cwd and locale applied") {
    AgentFixture a;
    exec(a, "mkdir -p start/here", std::string("__DISABLE_SESSION__"));
    auto r = post(a, "/api/session/create",
                  {{"id", "configured"},
                   {"env", {{"GREETING", "hello world"}, {"QUOTE", "it's"}}},
                   {"cwd", a.workspace() + "/start/here"}});
    REQUIRE(r.status == 200);
    CHECK(out(a, "echo \"$GREETING|$QUOTE\"; pwd; echo $LANG $LC_ALL", "configured") ==
          "hello world|it's\n" + a.workspace() + "/start/here\nC.UTF-8 C.UTF-8");
    // The server environment is inherited underneath.
    CHECK(out(a, "[ -n \"$PATH\" ] && echo has-path", "configured") == "has-path");
    // Defaults: the workspace.
    REQUIRE(post(a, "/api/session/create", {{"id", "plain"}}).status == 200);
    CHECK(out(a, "pwd; echo \"[$GREETING]\"", "plain") == a.workspace() + "\n[]");
    // A cwd that does not exist falls back silently to $HOME (or /).
    r = post(a, "/api/session/create", {{"id", "lost"}, {"cwd", "/no/such/dir"}});
    REQUIRE(r.status == 200);
    CHECK(out(a, "if [ \"$PWD\" = \"$HOME\" ] || [ \"$PWD\" = / ]; then echo fallback; fi",
              "lost") == "fallback");
}

TEST_CASE("session list: creation order, implicit sessions, deletions") {
    AgentFixture a;
    auto r = get(a, "/api/session/list");
    REQUIRE(r.status == 200);
    CHECK(r.body["success"] == true);
    CHECK(r.body["data"] == json::array());
    CHECK(isIsoTimestamp(r.body["timestamp"]));

    REQUIRE(post(a, "/api/session/create", {{"id", "zeta"}}).status == 200);
    exec(a, "true");                         // implicit "default"
    exec(a, "true", "alpha");                // implicit by id
    exec(a, "true", "__DISABLE_SESSION__");  // no session
    post(a, "/api/write", {{"path", "rel.txt"}, {"content", ""}, {"sessionId", "files"}});
    REQUIRE(post(a, "/api/session/create", {{"id", "middle"}}).status == 200);
    r = get(a, "/api/session/list");
    CHECK(r.body["data"] == json::array({"zeta", "default", "alpha", "files", "middle"}));

    REQUIRE(post(a, "/api/session/delete", {{"sessionId", "alpha"}}).status == 200);
    r = get(a, "/api/session/list");
    CHECK(r.body["data"] == json::array({"zeta", "default", "files", "middle"}));
    // Recreated: goes to the end.
    exec(a, "true", "alpha");
    r = get(a, "/api/session/list");
    CHECK(r.body["data"] == json::array({"zeta", "default", "files", "middle", "alpha"}));
}

TEST_CASE("session delete: response shape and errors") {
    AgentFixture a;
    exec(a, "export SBXT_X=1", "gone");
    auto r = post(a, "/api/session/delete", {{"sessionId", "gone"}});
    REQUIRE(r.status == 200);
    CHECK(r.body["success"] == true);
    CHECK(r.body["sessionId"] == "gone");
    CHECK(isIsoTimestamp(r.body["timestamp"]));
    // Deleting it again, or an id never seen: 404 (the reference answers 500 here).
    r = post(a, "/api/session/delete", {{"sessionId", "gone"}});
    CHECK(r.status == 404);
    CHECK(r.body["httpStatus"] == 404);
    CHECK(r.body["context"]["sessionId"] == "gone");
    CHECK(post(a, "/api/session/delete", {{"sessionId", "never"}}).status == 404);
    // The id can be used again afterwards: a fresh shell.
    CHECK(out(a, "echo \"[$SBXT_X]\"", "gone") == "[]");

    checkValidation(post(a, "/api/session/delete", json::object()), "REQUIRED");
    checkValidation(post(a, "/api/session/delete", {{"sessionId", ""}}), "REQUIRED");
    checkValidation(post(a, "/api/session/delete", {{"sessionId", 3}}), "INVALID_TYPE");
    checkValidation(postRaw(a, "/api/session/delete", "{oops"));
    checkValidation(postRaw(a, "/api/session/delete", ""));

    // The default session can be deleted and comes back on use.
    exec(a, "export SBXT_D=1");
    CHECK(post(a, "/api/session/delete", {{"sessionId", "default"}}).status == 200);
    CHECK(out(a, "echo \"[$SBXT_D]\"") == "[]");
}

TEST_CASE("session delete kills the commands the session started") {
    AgentFixture a;
    const std::string s = "doomed";
    // A shell job, a job of a subshell that exited (only the process group still ties it to
    // the session), and a background process started through the API.
    pid_t job = toPid(out(a, "sleep 1000 & echo $!", s));
    pid_t orphan = toPid(out(a, "(sleep 1000 & echo $!)", s));
    auto r = post(a, "/api/execute",
                  {{"command", "sh -c 'echo $$ > bg.pid; exec sleep 1000'"},
                   {"sessionId", s},
                   {"background", true}});
    REQUIRE(r.status == 200);
    REQUIRE(waitFor([&] { return !readFile(a.workspace() + "/bg.pid").empty(); }));
    pid_t bg = toPid(readFile(a.workspace() + "/bg.pid"));
    pid_t shell = toPid(out(a, "echo $$", s));
    CHECK_FALSE(processGone(job));
    CHECK_FALSE(processGone(orphan));
    CHECK_FALSE(processGone(bg));

    // Another session's jobs are not touched.
    pid_t other = toPid(out(a, "sleep 1000 & echo $!", "bystander"));

    REQUIRE(post(a, "/api/session/delete", {{"sessionId", s}}).status == 200);
    CHECK(waitGone(job));
    CHECK(waitGone(orphan));
    CHECK(waitGone(bg));
    CHECK(waitGone(shell));
    CHECK_FALSE(processGone(other));
    CHECK(out(a, "kill $!; echo ok", "bystander") == "ok");
    CHECK(waitGone(other));
}

TEST_CASE("session delete while a command runs: the command gets 410 SESSION_DESTROYED") {
    AgentFixture a;
    const std::string s = "busy";
    exec(a, "true", s);
    Reply inflight;
    std::thread t([&] {
        auto c = a.server.connect();
        inflight = post(c, "/api/execute",
                        {{"command", "sleep 1000 & echo $! > sleeper.pid; touch started; wait"},
                         {"sessionId", s}});
    });
    bool started = waitFor([&] { return pathExists(a.workspace() + "/started"); });
    auto del = post(a, "/api/session/delete", {{"sessionId", s}});
    t.join();
    REQUIRE(started);
    CHECK(del.status == 200);
    checkError(inflight, 410, "SESSION_DESTROYED");
    CHECK(inflight.body["context"]["sessionId"] == s);
    CHECK(waitGone(toPid(readFile(a.workspace() + "/sleeper.pid"))));
    // The id is usable again.
    CHECK(out(a, "echo again", s) == "again");
}

TEST_CASE("session delete while a stream runs in it: the stream completes, the command dies") {
    AgentFixture a;
    const std::string s = "streaming";
    SseReply streamed;
    std::thread t([&] {
        auto c = a.server.connect();
        streamed =
            stream(c, "/api/execute/stream",
                   {{"command", "echo before; sh -c 'echo $$ > streamer.pid; exec sleep 1000'"},
                    {"sessionId", s}});
    });
    bool started = waitFor([&] { return !readFile(a.workspace() + "/streamer.pid").empty(); });
    auto del = post(a, "/api/session/delete", {{"sessionId", s}});
    t.join();
    REQUIRE(started);
    CHECK(del.status == 200);
    CHECK(waitGone(toPid(readFile(a.workspace() + "/streamer.pid"))));
    CHECK(streamed.joined("stdout") == "before\n");
    REQUIRE(!streamed.events.empty());
    CHECK(streamed.events.back()["type"] == "complete");
    CHECK(streamed.ofType("complete").size() == 1);
}

TEST_CASE("context session id: Authorization, X-Session-Id, ?session=, ?sessionId=") {
    AgentFixture a;
    for (const char* id : {"bearer", "header", "query1", "query2", "body"})
        exec(a, std::string("export SBXT_WHO=") + id, std::string(id));

    auto who = [&](const std::string& target, const sandbox::client::HeaderList& headers,
                   json body = json::object()) {
        body["command"] = "echo $SBXT_WHO";
        auto r = post(a, target, body, headers);
        REQUIRE_MESSAGE(r.status == 200, r.raw);
        return r.body;
    };
    json j = who("/api/execute", {{"Authorization", "Bearer bearer"}});
    CHECK(j["stdout"] == "bearer");
    CHECK(j["sessionId"] == "bearer");
    CHECK(who("/api/execute", {{"X-Session-Id", "header"}})["stdout"] == "header");
    CHECK(who("/api/execute?session=query1", {})["stdout"] == "query1");
    CHECK(who("/api/execute?sessionId=query2", {})["stdout"] == "query2");
    CHECK(who("/api/execute?x=1&sessionId=query2", {})["stdout"] == "query2");

    // Priority: Authorization > X-Session-Id > ?session= > ?sessionId=.
    CHECK(who("/api/execute?session=query1", {{"Authorization", "Bearer bearer"},
                                              {"X-Session-Id", "header"}})["stdout"] == "bearer");
    CHECK(who("/api/execute?session=query1", {{"X-Session-Id", "header"}})["stdout"] == "header");
    CHECK(who("/api/execute?sessionId=query2&session=query1", {})["stdout"] == "query1");
    // A non-Bearer Authorization is not a session id.
    CHECK(who("/api/execute",
              {{"Authorization", "Basic abc"}, {"X-Session-Id", "header"}})["stdout"] == "header");

    // A (truthy) body sessionId wins; an empty one falls back to the context id.
    CHECK(who("/api/execute", {{"Authorization", "Bearer bearer"}},
              {{"sessionId", "body"}})["stdout"] == "body");
    CHECK(who("/api/execute", {{"X-Session-Id", "header"}}, {{"sessionId", ""}})["stdout"] ==
          "header");
    // The context id can select sessionless mode.
    CHECK(who("/api/execute", {{"X-Session-Id", "__DISABLE_SESSION__"}})["stdout"] == "\n");
    // No id anywhere: the default session, and no sessionId in the response.
    j = who("/api/execute", {});
    CHECK(j["stdout"] == "");
    CHECK_FALSE(j.contains("sessionId"));

    // The stream route honours it as well.
    auto sse = stream(a.http, "/api/execute/stream", {{"command", "echo $SBXT_WHO"}},
                      {{"X-Session-Id", "header"}});
    CHECK(sse.joined("stdout") == "header\n");
}

TEST_CASE("sessions: state persists within a session and is isolated between sessions") {
    AgentFixture a;
    exec(a, "mkdir -p da db");
    exec(a,
         "cd da; export SBXT_V=a; fn(){ echo fa; }; alias al='echo alias-a'; set -o pipefail; "
         "SBXT_SV=shellvar",
         "A");
    exec(a, "cd db; export SBXT_V=b; fn(){ echo fb; }", "B");
    CHECK(out(a, "basename \"$PWD\"; echo $SBXT_V; fn; echo $SBXT_SV; shopt -o pipefail | cut -f2",
              "A") == "da\na\nfa\nshellvar\non");
    CHECK(
        out(a,
            "basename \"$PWD\"; echo $SBXT_V; fn; echo \"[$SBXT_SV]\"; shopt -o pipefail | cut -f2",
            "B") == "db\nb\nfb\n[]\noff");
    // The default session saw none of it.
    CHECK(out(a, "pwd; echo \"[$SBXT_V]\"; type fn >/dev/null 2>&1 || echo none") ==
          a.workspace() + "\n[]\nnone");
    // The filesystem is shared.
    exec(a, "echo shared > shared.txt", std::string("A"));
    CHECK(out(a, "cat ../da/shared.txt", "B") == "shared");
}

TEST_CASE("sessions: whitespace-only sessionId is rejected") {
    AgentFixture a;
    for (const char* id : {" ", "\t", "  \n "}) {
        CAPTURE(id);
        checkValidation(post(a, "/api/execute", {{"command", "true"}, {"sessionId", id}}));
        auto s = stream(a.http, "/api/execute/stream", {{"command", "true"}, {"sessionId", id}});
        CHECK(s.status == 400);
        CHECK(s.contentType == "application/json");
    }
    // No session was created for them.
    auto list = get(a, "/api/session/list");
    CHECK(list.body["data"] == json::array());
}
