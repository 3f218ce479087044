// The git and watch helpers both sides share: URL rules, credential redaction, the default
// clone directory, the watch glob rule, and the request/response JSON mapping.
#include <doctest/doctest.h>

#include "core/errors.hpp"
#include "core/wire_git_watch.hpp"

using namespace sandbox::core::wire;
using nlohmann::json;

TEST_CASE("gitUrlProblems") {
    for (const char* ok :
         {"https://github.com/a/b.git", "http://h/x", "git://h/x", "ssh://git@h/x",
          "file:///workspace/r.git", "git@github.com:a/b.git", "/srv/repo.git", "  https://h/x  "})
        CHECK_MESSAGE(gitUrlProblems(ok).empty(), ok);
    for (const char* bad : {"", "   ", "-uhack", "ext::sh -c id", "fd::3", "javascript://x/y",
                            "https://", "https://h/a\nb", "https://h/\t"})
        CHECK_MESSAGE(!gitUrlProblems(bad).empty(), bad);
    CHECK_FALSE(gitUrlProblems(std::string("https://h/x\0y", 13)).empty());
    CHECK_FALSE(gitUrlProblems("https://h/" + std::string(2048, 'a')).empty());
    CHECK(gitUrlProblems("https://h/" + std::string(2000, 'a')).empty());
}

TEST_CASE("redactCredentials") {
    CHECK(redactCredentials("https://user:tok@github.com/a/b") == "https://***@github.com/a/b");
    CHECK(redactCredentials("https://tok@github.com") == "https://***@github.com");
    CHECK(redactCredentials("https://github.com/a/b") == "https://github.com/a/b");
    CHECK(redactCredentials("git@github.com:a/b.git") == "git@github.com:a/b.git");
    CHECK(redactCredentials("fatal: unable to access 'https://u:p@h:8/x/': refused\n"
                            "see http://a:b@c/d and ftp://e@f") ==
          "fatal: unable to access 'https://***@h:8/x/': refused\nsee http://***@c/d and "
          "ftp://***@f");
    CHECK(redactCredentials("https://u:p@ss@h/x") == "https://***@h/x");  // last '@' ends it
}

TEST_CASE("repoNameFromUrl") {
    CHECK(repoNameFromUrl("https://github.com/org/app.git") == "app");
    CHECK(repoNameFromUrl("https://github.com/org/app") == "app");
    CHECK(repoNameFromUrl("https://github.com/org/app/") == "app");
    CHECK(repoNameFromUrl("git@github.com:org/tool.git") == "tool");
    CHECK(repoNameFromUrl("file:///workspace/r.git") == "r");
    CHECK(repoNameFromUrl("https://h/x.git?ref=1") == "x");
    CHECK(repoNameFromUrl("https://") == "repository");
    CHECK(repoNameFromUrl(".git") == "repository");
}

TEST_CASE("watchGlobMatch: whole path segments, *, ** and ?") {
    auto m = [](std::string pat, std::string path) { return watchGlobMatch({pat}, path); };
    CHECK(m("*.log", "x.log"));
    CHECK(m("*.log", "a/b/x.log"));
    CHECK_FALSE(m("*.log", "x.log.txt"));
    CHECK(m("*.log", "x.log/inner"));  // a directory named x.log and what is in it
    CHECK(m("build", "build"));
    CHECK(m("build", "a/build/b"));
    CHECK_FALSE(m("build", "rebuild"));
    CHECK_FALSE(m("build", "builds/x"));
    CHECK(m("src/*.ts", "src/a.ts"));
    CHECK(m("src/*.ts", "x/src/a.ts"));
    CHECK_FALSE(m("src/*.ts", "src/d/a.ts"));
    CHECK(m("src/**", "src/d/e/a.ts"));
    CHECK(m("**/a.ts", "x/y/a.ts"));
    CHECK(m("a?c", "abc"));
    CHECK_FALSE(m("a?c", "a/c"));
    CHECK(m(".git", ".git/HEAD"));
    CHECK(m("*", "anything"));
    CHECK_FALSE(watchGlobMatch({}, "x"));
    CHECK(watchGlobMatch({"*.md", "*.txt"}, "d/n.txt"));
    CHECK(m("a.b", "a.b"));
    CHECK_FALSE(m("a.b", "axb"));  // '.' is literal
}

TEST_CASE("watchGlobProblems") {
    CHECK(watchGlobProblems("*.ts").empty());
    CHECK(watchGlobProblems("src/**").empty());
    CHECK_FALSE(watchGlobProblems("").empty());
    CHECK_FALSE(watchGlobProblems("  ").empty());
    for (const char* bad : {"[ab]", "{a,b}", "a]", "}"})
        CHECK_FALSE(watchGlobProblems(bad).empty());
    CHECK_FALSE(watchGlobProblems(std::string("a\0b", 3)).empty());
}

TEST_CASE("git and watch messages: JSON mapping") {
    GitCheckoutRequest g;
    g.repoUrl = "https://h/x";
    g.branch = "dev";
    g.depth = 1;
    g.timeoutMs = 5000;
    auto j = g.toJson();
    CHECK(j ==
          json{{"repoUrl", "https://h/x"}, {"branch", "dev"}, {"depth", 1}, {"timeoutMs", 5000}});
    auto back = GitCheckoutRequest::fromJson(j);
    CHECK(back.repoUrl == g.repoUrl);
    CHECK(back.branch == g.branch);
    CHECK(back.depth == 1);
    CHECK(back.timeoutMs == 5000);
    CHECK_THROWS_AS(GitCheckoutRequest::fromJson(json{{"repoUrl", 1}}), sandbox::core::ApiError);
    try {
        GitCheckoutRequest::fromJson(json{{"repoUrl", "x"}, {"timeoutMs", 0}});
        FAIL("no exception");
    } catch (const sandbox::core::ApiError& e) {
        CHECK(e.code() == "VALIDATION_FAILED");
        CHECK(e.context()["validationErrors"][0]["code"] == "INVALID_TIMEOUT");
    }

    WatchRequest w;
    w.path = "/workspace/a";
    w.recursive = false;
    w.include = {"*.ts"};
    w.since = "watch-1-2:3";
    auto wj = w.toJson();
    CHECK(wj == json{{"path", "/workspace/a"},
                     {"recursive", false},
                     {"include", {"*.ts"}},
                     {"since", "watch-1-2:3"}});
    auto wb = WatchRequest::fromJson(wj);
    CHECK(wb.include == w.include);
    CHECK(wb.recursive == false);
    CHECK(wb.since == w.since);

    auto c = CheckChangesResponse::fromJson(json{{"success", true},
                                                 {"status", "resync"},
                                                 {"reason", "expired"},
                                                 {"version", "v"},
                                                 {"timestamp", "t"}});
    CHECK(c.status == "resync");
    CHECK(c.reason == "expired");
    CHECK(c.toJson()["reason"] == "expired");

    CHECK(watch_event::watching("/w", "watch-1-2") ==
          R"({"type":"watching","path":"/w","watchId":"watch-1-2"})");
    CHECK(
        watch_event::event("create", "/w/a", true, "T") ==
        R"({"type":"event","eventType":"create","path":"/w/a","isDirectory":true,"timestamp":"T"})");
    CHECK(watch_event::stopped("r") == R"({"type":"stopped","reason":"r"})");
    CHECK(watch_event::error("e") == R"({"type":"error","error":"e"})");
}

TEST_CASE("git and watch responses: any JSON reads, a wrong type as absent") {
    // Found by fuzz_wire: `success` was read with json::value(), which throws type_error for a
    // non-boolean and for anything but an object (the SDK reads whatever the server sent).
    for (const json& j : {json{{"success", "yes"}, {"repoUrl", "r"}}, json::array({1, 2}),
                          json("text"), json(nullptr), json(json::value_t::discarded)}) {
        CHECK_NOTHROW(GitCheckoutResponse::fromJson(j));
        CHECK_NOTHROW(CheckChangesResponse::fromJson(j));
        CHECK(GitCheckoutResponse::fromJson(j).success);  // the default
        CHECK(CheckChangesResponse::fromJson(j).success);
    }
    CHECK(GitCheckoutResponse::fromJson(json{{"success", "yes"}, {"repoUrl", "r"}}).repoUrl == "r");
    CHECK_FALSE(GitCheckoutResponse::fromJson(json{{"success", false}}).success);
    CHECK_FALSE(CheckChangesResponse::fromJson(json{{"success", false}}).success);
}
