// Concurrency (§9.1): different sessions run in parallel, requests on one session are serialised
// (and never mixed up), and many clients on mixed sessions all get their own answers.
// Parallelism is proven by commands that wait for each other (with their own bounded timeouts),
// never by measuring time.
#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/agent_test_util.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using namespace sandbox::testing::agent;

namespace {
// Shell: create `mine`, then wait (at most ~10 s) for `theirs`; print "met" if it appeared.
std::string rendezvous(const std::string& mine, const std::string& theirs) {
    return "touch " + mine + "; n=0; while [ ! -e " + theirs +
           " ] && [ $n -lt 2000 ]; do sleep 0.005; n=$((n+1)); done; [ -e " + theirs +
           " ] && echo met";
}
}  // namespace

TEST_CASE("concurrency: two sessions run in parallel") {
    AgentFixture a;
    // Each command can only finish successfully while the other one runs: if the agent
    // serialised them, the first would give up waiting and print nothing.
    Reply ra, rb;
    std::thread ta([&] {
        auto c = a.server.connect();
        ra = post(c, "/api/execute",
                  {{"command", rendezvous("a.flag", "b.flag")}, {"sessionId", "A"}});
    });
    std::thread tb([&] {
        auto c = a.server.connect();
        rb = post(c, "/api/execute",
                  {{"command", rendezvous("b.flag", "a.flag")}, {"sessionId", "B"}});
    });
    ta.join();
    tb.join();
    REQUIRE(ra.status == 200);
    REQUIRE(rb.status == 200);
    CHECK(ra.body["stdout"] == "met");
    CHECK(rb.body["stdout"] == "met");
}

TEST_CASE("concurrency: sessions, sessionless commands and streams run in parallel") {
    AgentFixture a;
    // Three parties: a session exec, a sessionless exec and a session stream, in a ring.
    Reply r1, r2;
    SseReply r3;
    std::thread t1([&] {
        auto c = a.server.connect();
        r1 = post(c, "/api/execute", {{"command", rendezvous("one", "two")}, {"sessionId", "S1"}});
    });
    std::thread t2([&] {
        auto c = a.server.connect();
        r2 = post(c, "/api/execute",
                  {{"command", rendezvous("two", "three")}, {"sessionId", "__DISABLE_SESSION__"}});
    });
    std::thread t3([&] {
        auto c = a.server.connect();
        r3 = stream(c, "/api/execute/stream",
                    {{"command", rendezvous("three", "one")}, {"sessionId", "S3"}});
    });
    t1.join();
    t2.join();
    t3.join();
    CHECK(r1.body["stdout"] == "met");
    CHECK(r2.body["stdout"] == "met\n");
    CHECK(r3.joined("stdout") == "met\n");

    // File operations on other sessions are not blocked by a busy session either.
    std::thread busy([&] {
        auto c = a.server.connect();
        r1 = post(c, "/api/execute",
                  {{"command", rendezvous("busy", "freed")}, {"sessionId", "S1"}});
    });
    bool started = waitFor([&] { return pathExists(a.workspace() + "/busy"); });
    auto w = post(a, "/api/write", {{"path", "freed"}, {"content", "x"}, {"sessionId", "S2"}});
    busy.join();
    REQUIRE(started);
    CHECK(w.status == 200);
    CHECK(r1.body["stdout"] == "met");
}

TEST_CASE("concurrency: requests on one session queue behind each other") {
    AgentFixture a;
    const std::string s = "queue";
    exec(a, "export SEEN=none", s);
    // A holds the session until `release` exists; B and C arrive meanwhile (or later). Either
    // way they run after A, in the same shell, and every response belongs to its request.
    Reply ra, rb, rc;
    std::thread ta([&] {
        auto c = a.server.connect();
        ra = post(c, "/api/execute",
                  {{"command",
                    "touch a-started; n=0; while [ ! -e release ] && [ $n -lt 2000 ]; "
                    "do sleep 0.005; n=$((n+1)); done; export SEEN=A; echo A"},
                   {"sessionId", s}});
    });
    REQUIRE(waitFor([&] { return pathExists(a.workspace() + "/a-started"); }));
    std::thread tb([&] {
        auto c = a.server.connect();
        rb = post(c, "/api/execute", {{"command", "echo \"B after $SEEN\""}, {"sessionId", s}});
    });
    std::thread tc([&] {
        auto c = a.server.connect();
        rc = post(c, "/api/execute", {{"command", "echo \"C after $SEEN\" >&2"}, {"sessionId", s}});
    });
    // Another session meanwhile: not blocked, and it releases A.
    json other = exec(a, "touch release; echo other", std::string("elsewhere"));
    ta.join();
    tb.join();
    tc.join();
    CHECK(other["stdout"] == "other");
    CHECK(ra.body["stdout"] == "A");
    CHECK(rb.body["stdout"] == "B after A");
    CHECK(rb.body["stderr"] == "");
    CHECK(rc.body["stderr"] == "C after A");
    CHECK(rc.body["stdout"] == "");

    // Commands from several clients on one session never overlap and each sees a consistent
    // shell: appending to a shell variable yields distinct prefix lengths 1..N.
    constexpr int kClients = 8;
    exec(a, "L=", s);
    std::vector<std::string> outs(kClients);
    std::vector<std::thread> ts;
    for (int i = 0; i < kClients; ++i)
        ts.emplace_back([&, i] {
            auto c = a.server.connect();
            auto r = post(c, "/api/execute",
                          {{"command", "L=\"${L}" + std::to_string(i) + "\"; echo \"${#L} $L\""},
                           {"sessionId", s}});
            outs[i] = r.status == 200 ? r.body["stdout"].get<std::string>() : r.raw;
        });
    for (auto& t : ts) t.join();
    std::string final = out(a, "echo \"$L\"", s);
    CAPTURE(final);
    REQUIRE(final.size() == kClients);
    std::set<int> lengths;
    for (int i = 0; i < kClients; ++i) {
        CAPTURE(outs[i]);
        auto sp = outs[i].find(' ');
        REQUIRE(sp != std::string::npos);
        int len = std::stoi(outs[i].substr(0, sp));
        lengths.insert(len);
        CHECK(outs[i].substr(sp + 1) == final.substr(0, len));  // a prefix of the final order
        CHECK(final[len - 1] == static_cast<char>('0' + i));    // its own digit last
    }
    CHECK(lengths.size() == kClients);
}

TEST_CASE("concurrency: 20 clients x 10 commands on mixed sessions") {
    AgentFixture a;
    constexpr int kThreads = 20, kPerThread = 10;
    std::atomic<int> ok{0};
    std::vector<std::string> failures(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            auto c = a.server.connect();
            for (int i = 0; i < kPerThread; ++i) {
                const std::string tag = "t" + std::to_string(t) + "-" + std::to_string(i);
                // Shared sessions, a private session, and sessionless calls, interleaved.
                std::string sid = i % 3 == 0   ? "shared" + std::to_string(t % 4)
                                  : i % 3 == 1 ? "own" + std::to_string(t)
                                               : "__DISABLE_SESSION__";
                json body = {{"command", "echo " + tag + "; echo err-" + tag + " >&2"},
                             {"sessionId", sid}};
                std::string want = sid == "__DISABLE_SESSION__" ? tag + "\n" : tag;
                std::string wantErr =
                    sid == "__DISABLE_SESSION__" ? "err-" + tag + "\n" : "err-" + tag;
                try {
                    Reply r;
                    if (i == kPerThread - 1) {
                        auto s = stream(c, "/api/execute/stream", body);
                        r.status = s.status;
                        r.body = {{"stdout", s.joined("stdout")},
                                  {"stderr", s.joined("stderr")},
                                  {"exitCode",
                                   s.events.empty() ? json(nullptr) : s.events.back()["exitCode"]}};
                        want = tag + "\n";
                        wantErr = "err-" + tag + "\n";
                    } else {
                        r = post(c, "/api/execute", body);
                    }
                    if (r.status == 200 && r.body["stdout"] == want &&
                        r.body["stderr"] == wantErr && r.body["exitCode"] == 0)
                        ++ok;
                    else
                        failures[t] += tag + ": " + r.body.dump() + "\n";
                } catch (const std::exception& e) {
                    failures[t] += tag + ": " + e.what() + "\n";
                }
            }
        });
    for (auto& t : threads) t.join();
    std::string allFailures;
    for (const auto& f : failures) allFailures += f;
    CHECK_MESSAGE(ok == kThreads * kPerThread, allFailures);
    // Every session is listed once.
    auto list = get(a, "/api/session/list");
    CHECK(list.body["data"].size() == 4 + kThreads);
}
