// POST /api/watch and /api/watch/check (§3.9): events for create/modify/delete/move in nested
// directories (also ones created after the watch started), include/exclude and event filters,
// a 10,000-file burst whose final state must come out right, the checkChanges version-token
// rules, and every error response.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "agent/agent_test_util.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using sandbox::testing::binPath;
using sandbox::testing::ServerProcess;
using sandbox::testing::TempDir;
using namespace sandbox::testing::agent;
namespace fs = std::filesystem;

namespace {

// Opens a watch stream on its own connection; once `watching` arrived runs `actions`, then reads
// until `done(event)` holds (the stream is then closed by the client).
SseReply watchUntil(AgentFixture& a, const json& body, const std::function<void()>& actions,
                    const std::function<bool(const json&)>& done) {
    auto c = a.server.connect();
    bool acted = false;
    return stream(c, "/api/watch", body, {}, [&](const json& ev) {
        if (!acted && ev.is_object() && ev.value("type", "") == "watching") {
            acted = true;
            actions();
        }
        return !done(ev);
    });
}

// True for the event (eventType, path) — used as the end marker of a run.
std::function<bool(const json&)> eventFor(const std::string& type, const std::string& path) {
    return [=](const json& ev) {
        return ev.is_object() && ev.value("type", "") == "event" &&
               ev.value("eventType", "") == type && ev.value("path", "") == path;
    };
}

// "eventType path[/]" for every file event, in order (a trailing / marks directories).
std::vector<std::string> fileEvents(const SseReply& r) {
    std::vector<std::string> out;
    for (const auto& e : r.ofType("event"))
        out.push_back(e.value("eventType", "") + " " + e.value("path", "") +
                      (e.value("isDirectory", false) ? "/" : ""));
    return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

std::size_t indexOf(const std::vector<std::string>& v, const std::string& s) {
    return static_cast<std::size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

json check(AgentFixture& a, json body) {
    auto r = post(a, "/api/watch/check", body);
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    return r.body;
}

}  // namespace

TEST_CASE("watch: watching first, then create/modify/move/delete, in nested directories") {
    AgentFixture a;
    std::string root = a.workspace() + "/w";
    fs::create_directories(root + "/pre");
    // Step 2 starts once step 1's deepest file was reported: by then the new directories are
    // watched, so the move and what follows it are seen event by event.
    bool step2 = false;
    auto step1done = eventFor("create", root + "/a/b/c/deep.txt");
    auto done = eventFor("create", root + "/zz-done");
    auto r = watchUntil(
        a, {{"path", "w"}},
        [&] {
            writeFile(root + "/pre/m.txt", "1");  // create (+modify)
            {
                std::ofstream f(root + "/pre/m.txt", std::ios::app);
                f << "more";  // modify
            }
            fs::rename(root + "/pre/m.txt", root + "/pre/n.txt");  // move_from + move_to
            fs::remove(root + "/pre/n.txt");                       // delete
            fs::create_directories(root + "/a/b/c");               // dirs made after the start
            writeFile(root + "/a/b/c/deep.txt", "d");
        },
        [&](const json& ev) {
            if (!step2 && step1done(ev)) {
                step2 = true;
                fs::rename(root + "/a/b", root + "/a/moved");   // a moved directory
                writeFile(root + "/a/moved/c/later.txt", "l");  // watched at its new place
                fs::remove_all(root + "/a/moved/c");
                writeFile(root + "/zz-done", "");
            }
            return done(ev);
        });
    CHECK(r.status == 200);
    CHECK(r.contentType == "text/event-stream");
    REQUIRE(!r.events.empty());
    CHECK(r.events[0] ==
          json({{"type", "watching"}, {"path", root}, {"watchId", r.events[0]["watchId"]}}));
    CHECK(std::regex_match(r.events[0]["watchId"].get<std::string>(),
                           std::regex(R"(watch-\d+-\d+)")));
    auto ev = fileEvents(r);
    INFO(json(ev).dump(1));
    for (const auto& e : r.ofType("event")) {
        CHECK(isIsoTimestamp(e["timestamp"]));
        CHECK(e.size() == 5);
    }
    const std::vector<std::string> inOrder = {"create " + root + "/pre/m.txt",
                                              "modify " + root + "/pre/m.txt",
                                              "move_from " + root + "/pre/m.txt",
                                              "move_to " + root + "/pre/n.txt",
                                              "delete " + root + "/pre/n.txt",
                                              "create " + root + "/a/",
                                              "create " + root + "/a/b/",
                                              "create " + root + "/a/b/c/",
                                              "create " + root + "/a/b/c/deep.txt",
                                              "move_from " + root + "/a/b/",
                                              "move_to " + root + "/a/moved/",
                                              "create " + root + "/a/moved/c/later.txt",
                                              "delete " + root + "/a/moved/c/later.txt",
                                              "delete " + root + "/a/moved/c/",
                                              "create " + root + "/zz-done"};
    std::size_t at = 0;
    for (const auto& want : inOrder) {
        auto i = indexOf(ev, want);
        CHECK_MESSAGE(i < ev.size(), want);
        if (i < ev.size()) {
            CHECK_MESSAGE(i >= at, "out of order: " << want);
            at = i;
        }
    }
}

TEST_CASE("watch: include, exclude, default excludes, event filter, non-recursive, file") {
    AgentFixture a;
    std::string root = a.workspace() + "/f";
    fs::create_directories(root + "/sub");
    SUBCASE("include *.txt (whole segments, any depth)") {
        auto r = watchUntil(
            a, {{"path", root}, {"include", {"*.txt"}}},
            [&] {
                writeFile(root + "/a.txt", "");
                writeFile(root + "/b.log", "");
                writeFile(root + "/sub/c.txt", "");
                fs::create_directories(root + "/new/deeper");
                writeFile(root + "/new/deeper/d.txt", "");
                writeFile(root + "/zz.txt", "");
            },
            eventFor("create", root + "/zz.txt"));
        auto ev = fileEvents(r);
        INFO(json(ev).dump(1));
        std::set<std::string> created;
        for (const auto& e : r.ofType("event")) {
            CHECK(e["path"].get<std::string>().ends_with(".txt"));
            if (e["eventType"] == "create") created.insert(e["path"]);
        }
        CHECK(created == std::set<std::string>{root + "/a.txt", root + "/sub/c.txt",
                                               root + "/new/deeper/d.txt", root + "/zz.txt"});
    }
    SUBCASE("exclude: neither reported nor descended into") {
        auto r = watchUntil(
            a, {{"path", root}, {"exclude", {"*.log", "skip", "gen/**"}}},
            [&] {
                writeFile(root + "/x.log", "");
                fs::create_directories(root + "/skip/inner");
                writeFile(root + "/skip/inner/y.txt", "");
                fs::create_directories(root + "/gen/out");
                writeFile(root + "/k.txt", "");
            },
            eventFor("create", root + "/k.txt"));
        auto ev = fileEvents(r);
        INFO(json(ev).dump(1));
        CHECK(contains(ev, "create " + root + "/k.txt"));
        CHECK(contains(ev, "create " + root + "/gen/"));
        for (const auto& e : ev) {
            CHECK(e.find(".log") == std::string::npos);
            CHECK(e.find("/skip") == std::string::npos);
            CHECK(e.find("/gen/out") == std::string::npos);
        }
    }
    SUBCASE("default excludes: .git, node_modules, .DS_Store") {
        auto r = watchUntil(
            a, {{"path", root}},
            [&] {
                fs::create_directories(root + "/node_modules/pkg");
                writeFile(root + "/node_modules/pkg/i.js", "");
                fs::create_directories(root + "/.git");
                writeFile(root + "/.git/HEAD", "");
                writeFile(root + "/.DS_Store", "");
                writeFile(root + "/ok", "");
            },
            eventFor("create", root + "/ok"));
        auto ev = fileEvents(r);
        INFO(json(ev).dump(1));
        CHECK(ev.front() == "create " + root + "/ok");
        for (const auto& e : ev) CHECK(e.find(root + "/ok") != std::string::npos);
    }
    SUBCASE("events: only the kinds asked for") {
        writeFile(root + "/gone", "x");
        auto r = watchUntil(
            a, {{"path", root}, {"events", {"delete", "attrib"}}},
            [&] {
                writeFile(root + "/new", "x");
                ::chmod((root + "/new").c_str(), 0600);
                fs::remove(root + "/gone");
            },
            eventFor("delete", root + "/gone"));
        auto ev = fileEvents(r);
        INFO(json(ev).dump(1));
        CHECK(contains(ev, "attrib " + root + "/new"));
        for (const auto& e : ev) CHECK((e.rfind("delete ", 0) == 0 || e.rfind("attrib ", 0) == 0));
    }
    SUBCASE("recursive:false reports the directory's own entries only") {
        auto r = watchUntil(
            a, {{"path", root}, {"recursive", false}},
            [&] {
                writeFile(root + "/sub/inner.txt", "");
                fs::create_directories(root + "/d2");
                writeFile(root + "/d2/x", "");
                writeFile(root + "/top.txt", "");
            },
            eventFor("create", root + "/top.txt"));
        auto ev = fileEvents(r);
        INFO(json(ev).dump(1));
        CHECK(ev ==
              std::vector<std::string>{"create " + root + "/d2/", "create " + root + "/top.txt"});
    }
    SUBCASE("a single file") {
        writeFile(root + "/one.txt", "a");
        auto r = watchUntil(
            a, {{"path", root + "/one.txt"}},
            [&] {
                std::ofstream f(root + "/one.txt", std::ios::app);
                f << "b";
                f.close();
                fs::remove(root + "/one.txt");
            },
            [](const json& e) { return e.value("type", "") == "stopped"; });
        auto ev = fileEvents(r);
        INFO(r.raw);
        CHECK(ev == std::vector<std::string>{"modify " + root + "/one.txt",
                                             "delete " + root + "/one.txt"});
        CHECK(r.events.back() == json({{"type", "stopped"}, {"reason", "Watch process ended"}}));
    }
}

TEST_CASE("watch: the stream stops when the watched directory is removed") {
    AgentFixture a;
    std::string root = a.workspace() + "/vanish";
    fs::create_directories(root);
    auto r = watchUntil(
        a, {{"path", root}}, [&] { fs::remove_all(root); },
        [](const json& e) { return e.value("type", "") == "stopped"; });
    CHECK(r.events.back() == json({{"type", "stopped"}, {"reason", "Watch process ended"}}));
}

TEST_CASE("watch: a burst of 10,000 file creations in new nested directories") {
    AgentFixture a;
    std::string root = a.workspace() + "/burst";
    fs::create_directories(root);
    std::set<std::string> expected;
    const std::string sentinel = root + "/zzzz-sentinel";
    auto r = watchUntil(
        a, {{"path", root}},
        [&] {
            for (int d = 0; d < 100; ++d) {
                std::string dir = root + "/d" + std::to_string(d) + "/sub";
                fs::create_directories(dir);
                expected.insert(root + "/d" + std::to_string(d) + "/");
                expected.insert(dir + "/");
                for (int f = 0; f < 100; ++f) {
                    std::string p = dir + "/f" + std::to_string(f) + ".txt";
                    writeFile(p, "content " + std::to_string(f));
                    expected.insert(p);
                }
            }
            writeFile(sentinel, "");
            expected.insert(sentinel);
        },
        eventFor("create", sentinel));
    // Replay the events into a set of paths: that must be the tree as it is now.
    std::set<std::string> state;
    for (const auto& e : r.ofType("event")) {
        std::string p = e.value("path", "") + (e.value("isDirectory", false) ? "/" : "");
        std::string t = e.value("eventType", "");
        if (t == "create" || t == "move_to") state.insert(p);
        if (t == "delete" || t == "move_from") state.erase(p);
    }
    CHECK(expected.size() == 10201);
    CHECK(state.size() == expected.size());
    CHECK(state == expected);
}

TEST_CASE("watch/check: version tokens") {
    AgentFixture a;
    std::string root = a.workspace() + "/c";
    fs::create_directories(root);
    const std::regex version(R"(watch-\d+-\d+:(\d+))");
    json base = {{"path", "c"}};

    auto first = check(a, base);
    CHECK(first["success"] == true);
    CHECK(first["status"] == "unchanged");
    CHECK(isIsoTimestamp(first["timestamp"]));
    CHECK_FALSE(first.contains("reason"));
    std::smatch m;
    std::string v0 = first["version"];
    REQUIRE(std::regex_match(v0, m, version));
    CHECK(m[1] == "0");

    json since = base;
    since["since"] = v0;
    CHECK(check(a, since)["status"] == "unchanged");
    CHECK(check(a, since)["version"] == v0);

    writeFile(root + "/x", "1");  // seen by the very next check: no waiting
    auto changed = check(a, since);
    CHECK(changed["status"] == "changed");
    std::string v1 = changed["version"];
    CHECK(v1 != v0);
    CHECK(v1.substr(0, v1.rfind(':')) == v0.substr(0, v0.rfind(':')));
    since["since"] = v1;
    CHECK(check(a, since)["status"] == "unchanged");

    SUBCASE("a version ahead of the watch is refused") {
        json ahead = base;
        ahead["since"] = v0.substr(0, v0.rfind(':')) + ":999999";
        auto r = post(a, "/api/watch/check", ahead);
        checkError(r, 400, "VALIDATION_FAILED");
    }
    SUBCASE("another watch's version: resync, restarted") {
        json other = base;
        other["since"] = "watch-999999-1:0";
        auto r = check(a, other);
        CHECK(r["status"] == "resync");
        CHECK(r["reason"] == "restarted");
        CHECK(r["version"] == v1);
    }
    SUBCASE("the watch ended (its directory was removed): resync, expired; then restarted") {
        fs::remove_all(root);
        fs::create_directories(root);
        auto r = check(a, since);
        CHECK(r["status"] == "resync");
        CHECK(r["reason"] == "expired");
        std::string v2 = r["version"];
        CHECK(v2.substr(0, v2.rfind(':')) != v1.substr(0, v1.rfind(':')));
        auto again = check(a, since);
        CHECK(again["status"] == "resync");
        CHECK(again["reason"] == "restarted");
    }
    SUBCASE("a different filter is a different watch") {
        json inc = base;
        inc["include"] = {"*.md"};
        inc["since"] = v1;
        auto r = check(a, inc);
        CHECK(r["status"] == "resync");
    }
    SUBCASE("a live stream and checkChanges share the watch") {
        auto r = watchUntil(
            a, base, [&] { writeFile(root + "/y", "2"); }, eventFor("create", root + "/y"));
        CHECK(r.events[0]["watchId"] == v1.substr(0, v1.rfind(':')));
        CHECK(check(a, since)["status"] == "changed");
    }
}

TEST_CASE("watch and watch/check: error responses") {
    AgentFixture a;
    fs::create_directories(a.workspace() + "/ok");
    fs::create_directory_symlink("/etc", a.workspace() + "/escape");
    for (const char* route : {"/api/watch", "/api/watch/check"}) {
        INFO(route);
        checkValidation(postRaw(a, route, "{oops"));
        checkValidation(postRaw(a, route, "[1]"));
        checkValidation(post(a, route, json::object()), "INVALID_PATH");
        checkValidation(post(a, route, {{"path", 5}}), "INVALID_PATH");
        checkValidation(post(a, route, {{"path", "   "}}), "INVALID_PATH");
        checkValidation(post(a, route, {{"path", std::string("ok\0x", 4)}}), "INVALID_PATH");
        checkValidation(post(a, route, {{"path", "ok"}, {"recursive", "yes"}}), "INVALID_TYPE");
        checkValidation(post(a, route, {{"path", "ok"}, {"include", "*.txt"}}), "INVALID_TYPE");
        checkValidation(post(a, route, {{"path", "ok"}, {"include", {1}}}));
        checkValidation(post(a, route, {{"path", "ok"}, {"events", {"explode"}}}), "INVALID_EVENT");

        auto both = post(a, route, {{"path", "ok"}, {"include", {"*.a"}}, {"exclude", {"*.b"}}});
        checkError(both, 400, "VALIDATION_FAILED");
        CHECK(both.body["context"]["include"] == json({"*.a"}));
        for (const char* bad : {"[ab]", "{a,b}", "x]", "  "}) {
            auto r = post(a, route, {{"path", "ok"}, {"include", {bad}}});
            checkError(r, 400, "VALIDATION_FAILED");
            CHECK(r.body["context"]["pattern"] == bad);
        }
        auto bad = post(a, route, {{"path", "ok"}, {"exclude", {"[x]"}}});
        checkError(bad, 400, "VALIDATION_FAILED");
        CHECK(bad.body["message"].get<std::string>().find(
                  "Supported tokens: *, **, ? and path separators") != std::string::npos);

        for (const char* outside : {"/etc", "..", "../x", "escape"}) {
            auto r = post(a, route, {{"path", outside}});
            INFO(outside);
            checkError(r, 403, "PERMISSION_DENIED");
            CHECK(r.body["message"] == "path must be inside " + a.workspace());
            CHECK(r.body["context"]["path"] == outside);
            CHECK(r.body["context"]["workspaceRoot"] == a.workspace());
            CHECK(r.body["context"]["resolvedPath"].is_string());
        }
        auto missing = post(a, route, {{"path", "nope"}});
        checkError(missing, 404, "FILE_NOT_FOUND");
        CHECK(missing.body["message"] == "Path does not exist: " + a.workspace() + "/nope");
        CHECK(missing.body["context"]["path"] == a.workspace() + "/nope");
    }
    for (const json& since : {json(""), json("  "), json("garbage"), json("watch-1-2:"), json(":5"),
                              json("watch-1-2:-1"), json("watch-1-2:1x")}) {
        INFO(since.dump());
        auto r = post(a, "/api/watch/check", {{"path", "ok"}, {"since", since}});
        checkError(r, 400, "VALIDATION_FAILED");
    }
    auto num = post(a, "/api/watch/check", {{"path", "ok"}, {"since", 3}});
    checkValidation(num, "INVALID_TYPE");
    auto unparsable = post(a, "/api/watch/check", {{"path", "ok"}, {"since", "garbage"}});
    CHECK(unparsable.body["message"] == "since must be a version returned by checkChanges()");
    CHECK(unparsable.body["context"]["since"] == "garbage");
}

TEST_CASE("watch: too many watches is WATCH_START_ERROR (check) / an error event (stream)") {
    TempDir dir;
    ServerProcess server(binPath("sandbox-agent"), {"--workspace", dir.path()},
                         {"SANDBOX_MAX_WATCHES=1"});
    auto http = server.connect();
    fs::create_directories(dir.path() + "/a");
    fs::create_directories(dir.path() + "/b");
    auto first = post(http, "/api/watch/check", {{"path", "a"}});
    REQUIRE_MESSAGE(first.status == 200, first.raw);
    auto again = post(http, "/api/watch/check", {{"path", "a"}});  // the same watch: fine
    CHECK(again.status == 200);
    auto r = post(http, "/api/watch/check", {{"path", "b"}});
    checkError(r, 500, "WATCH_START_ERROR");
    CHECK(r.body["context"]["path"] == dir.path() + "/b");
    auto c = server.connect();
    auto s = stream(c, "/api/watch", {{"path", "b"}});
    CHECK(s.status == 200);
    REQUIRE(s.events.size() == 1);
    CHECK(s.events[0]["type"] == "error");
    CHECK(s.events[0]["error"].get<std::string>().find("too many watches") != std::string::npos);
}

TEST_CASE("watch: an inotify queue overflow is repaired by a rescan") {
    // The agent is stopped (SIGSTOP) while more events happen than the kernel queues for one
    // inotify instance, so IN_Q_OVERFLOW is certain; the differences must then arrive as events.
    long maxQueued = std::atol(readFile("/proc/sys/fs/inotify/max_queued_events").c_str());
    if (maxQueued <= 0 || maxQueued > 200000) return;  // nothing to overflow in reasonable time
    AgentFixture a;
    std::string root = a.workspace() + "/ovf";
    fs::create_directories(root + "/old");
    for (int i = 0; i < 50; ++i) writeFile(root + "/old/o" + std::to_string(i), "x");
    writeFile(root + "/grow", "1");
    std::set<std::string> state = {root + "/old/", root + "/grow"};
    for (int i = 0; i < 50; ++i) state.insert(root + "/old/o" + std::to_string(i));
    const std::string sentinel = root + "/zzzz-sentinel";
    std::set<std::string> expected;
    auto r = watchUntil(
        a, {{"path", root}},
        [&] {
            REQUIRE(::kill(a.server.pid(), SIGSTOP) == 0);
            for (long i = 0; i < maxQueued + 500; ++i)
                writeFile(root + "/f" + std::to_string(i), "");
            for (int i = 0; i < 50; i += 2) fs::remove(root + "/old/o" + std::to_string(i));
            fs::create_directories(root + "/new/deep");
            writeFile(root + "/new/deep/n.txt", "n");
            writeFile(root + "/grow", "12345");
            writeFile(sentinel, "");
            REQUIRE(::kill(a.server.pid(), SIGCONT) == 0);
        },
        eventFor("create", sentinel));
    CHECK(r.raw.find(": inotify event queue overflowed: rescanned " + root) != std::string::npos);
    bool grew = false;
    for (const auto& e : r.ofType("event")) {
        std::string p = e.value("path", "") + (e.value("isDirectory", false) ? "/" : "");
        std::string t = e.value("eventType", "");
        if (t == "create" || t == "move_to") state.insert(p);
        if (t == "delete" || t == "move_from") state.erase(p);
        if (t == "modify" && p == root + "/grow") grew = true;
    }
    for (const auto& e : fs::recursive_directory_iterator(root))
        expected.insert(e.path().string() + (e.is_directory() ? "/" : ""));
    CHECK(state.size() == expected.size());
    CHECK(state == expected);
    CHECK(grew);
}
