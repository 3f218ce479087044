// sandboxd under hostile clients, which do not play by HTTP's rules, and the SDK's HTTP client
// against a server that defends itself (see docs/sandboxd.md, "Hostile clients").
#include <algorithm>
#include <atomic>
#include <sstream>
#include <thread>

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

/// The states of the IPv4 TCP connections to remote port `port` in this network namespace:
/// the client side of every connection to a server there ("01" established, "08" CLOSE_WAIT:
/// the server closed it).
std::vector<std::string> clientSideStates(int port) {
    std::vector<std::string> out;
    std::istringstream in(readFile("/proc/net/tcp"));
    std::string line;
    std::getline(in, line);  // the column names
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string slot, local, remote, state;
        fields >> slot >> local >> remote >> state;
        auto colon = remote.rfind(':');
        if (colon != std::string::npos && std::stoi(remote.substr(colon + 1), nullptr, 16) == port)
            out.push_back(state);
    }
    return out;
}

std::string requestHead(const std::string& method, const std::string& target, std::size_t length,
                        const std::string& extra = {}) {
    return method + " " + target +
           " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n" + extra +
           "\r\n";
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

    TEST_CASE("a connection that does not deliver a whole request head gets 408 and is closed") {
        DaemonFixture d({}, {"--header-timeout-ms", "300"});
        const int port = d.server.port();
        RawConn silent(port), partial(port), trickle(port);
        REQUIRE(silent.ok());
        REQUIRE(partial.ok());
        REQUIRE(trickle.ok());
        REQUIRE(partial.send("GET /health HTTP/1.1\r\nHost: x\r\n"));
        // One byte of a never-ending header every 50 ms: the head's deadline is not moved by
        // progress, so this is cut as well.
        std::atomic<bool> stop{false};
        std::thread slow([&] {
            if (!trickle.send("GET /health HTTP/1.1\r\nX-Slow: ")) return;
            while (!stop && trickle.send("a")) std::this_thread::sleep_for(50ms);
        });
        checkRefusal(silent.readToClose(kBound), 408, "invalid_request");
        checkRefusal(partial.readToClose(kBound), 408, "invalid_request");
        auto trickled = trickle.readToClose(kBound);
        stop = true;
        slow.join();
        checkRefusal(trickled, 408, "invalid_request");
        CHECK(call(d.http, "GET", "/health").status == 200);  // and it goes on serving
    }

    TEST_CASE("a request body that stops gets 408; an upload that keeps flowing is not cut") {
        DaemonFixture d({}, {"--body-timeout-ms", "1000"});
        const int port = d.server.port();
        const std::string id = newSandbox(d.http);
        RawConn stalled(port);
        REQUIRE(
            stalled.send(requestHead("PUT", sandboxPath(id, "/file/workspace/stalled.bin"), 100) +
                         std::string(10, 'x')));
        checkRefusal(stalled.readToClose(kBound), 408, "invalid_request");
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + id + "/workspace/stalled.bin"));

        // 30 pieces 50 ms apart: longer in all than the body timeout, but never quiet for
        // long (the pauses pace the upload; nothing waits on them).
        RawConn paced(port);
        const std::string piece(1000, 'y');
        REQUIRE(paced.send(
            requestHead("PUT", sandboxPath(id, "/file/workspace/paced.bin"), 30 * piece.size())));
        for (int i = 0; i < 30; ++i) {
            REQUIRE(paced.send(piece));
            std::this_thread::sleep_for(50ms);
        }
        auto resp = paced.readResponse(kBound);
        INFO(resp);
        CHECK(rawResponseStatus(resp) == 200);
        auto back = call(d.http, "GET", sandboxPath(id, "/file/workspace/paced.bin"));
        CHECK(back.raw == std::string(30 * piece.size(), 'y'));
    }

    TEST_CASE("no read timeout while a handler runs: a quiet /exec outlives every timeout") {
        DaemonFixture d({}, {"--header-timeout-ms", "300", "--body-timeout-ms", "300",
                             "--idle-timeout-ms", "300"});
        const std::string id = newSandbox(d.http);
        auto r = run(d.http, id, {"sh", "-c", "sleep 1.5; echo done"});
        INFO(r.describe());
        CHECK(r.wellFormed());
        CHECK(r.out == "done\n");
        CHECK(r.exitCode == 0);
    }

    TEST_CASE("a kept-alive connection idle for --idle-timeout-ms is closed without an answer") {
        DaemonFixture d({}, {"--idle-timeout-ms", "300"});
        RawConn c(d.server.port());
        REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
        auto first = c.readResponse(kBound);
        INFO(first);
        CHECK(rawResponseStatus(first) == 200);
        CHECK(rawResponseHeader(first, "connection") != "close");
        auto rest = c.readToClose(kBound);
        REQUIRE_MESSAGE(rest.has_value(), "the idle connection was not closed");
        CHECK(*rest == "");  // no 408 on an idle connection: a client may be sending just now
    }

    TEST_CASE("the SDK's HTTP client never uses a kept-alive connection the server closed") {
        // Each request below goes out after the server closed the client's kept-alive
        // connection at its idle timeout: each must succeed, and run exactly once.
        DaemonFixture d({}, {"--idle-timeout-ms", "200"});
        const int port = d.server.port();
        client::HttpConnection c = d.server.connect();
        const std::string id = newSandbox(c);
        auto closedByServer = [&] {
            auto states = clientSideStates(port);
            return !states.empty() &&
                   std::all_of(states.begin(), states.end(), [](auto& s) { return s == "08"; });
        };
        const std::string append = json{{"command", "echo run >> /tmp/runs"}}.dump();
        for (int i = 0; i < 2; ++i) {
            REQUIRE(waitFor(closedByServer));
            auto r = call(c, "POST", sandboxPath(id, "/agent/api/execute"), append);
            INFO(r.raw);
            CHECK(r.status == 200);
        }
        REQUIRE(waitFor(closedByServer));
        auto e = run(c, id, {"sh", "-c", "echo run >> /tmp/runs"});  // a stream
        INFO(e.describe());
        CHECK(e.exitCode == 0);
        REQUIRE(waitFor(closedByServer));
        CHECK(sh(c, id, "cat /tmp/runs") == "run\nrun\nrun\n");
    }

    TEST_CASE("over --max-connections a new connection gets 503 at once, unread, and is closed") {
        DaemonFixture d({}, {"--max-connections", "4"});
        const int port = d.server.port();
        std::vector<RawConn> held;
        for (int i = 0; i < 4; ++i) {
            held.emplace_back(port);
            REQUIRE(held.back().send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
            CHECK(rawResponseStatus(held.back().readResponse(kBound)) == 200);
        }
        RawConn extra(port);  // sends nothing: the answer comes without a request
        REQUIRE(extra.ok());
        auto refused = extra.readToClose(kBound);
        checkRefusal(refused, 503, "capacity_exceeded");
        if (refused) CHECK(rawResponseHeader(*refused, "retry-after") == "1");
        // The held connections are still served; once one goes, a new one is served again.
        REQUIRE(held.front().send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
        CHECK(rawResponseStatus(held.front().readResponse(kBound)) == 200);
        held.pop_back();
        CHECK(waitFor([&] {
            RawConn c(port);
            if (!c.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
                return false;
            auto r = c.readToClose(kBound);
            return r && rawResponseStatus(*r) == 200;
        }));
    }

    TEST_CASE("at the descriptor limit sandboxd pauses accepting instead of spinning") {
        const std::string prlimit = "/usr/bin/prlimit";
        if (!pathExists(prlimit)) {
            MESSAGE("skipped: no " << prlimit);
            return;
        }
#if defined(__SANITIZE_ADDRESS__)
        // Not under the sanitizers: UBSan's vptr check opens a pipe to probe memory, so with
        // no descriptor left it reports every virtual call as a bad object and aborts. The
        // behaviour tested is the daemon's own and runs in the normal build.
        MESSAGE("skipped under ASan/UBSan: the sanitizer runtime itself needs descriptors");
        return;
#endif
        constexpr int kLimit = 48;
        TempDir dir;
        const std::string nofile =
            "--nofile=" + std::to_string(kLimit) + ":" + std::to_string(kLimit);
        ServerProcess server(
            prlimit, {nofile, "--", binPath("sandboxd"), "--state-dir", dir.path() + "/state"},
            {"SANDBOX_API_KEY="}, dir.path() + "/sandboxd.log");
        const pid_t pid = server.pid();
        REQUIRE(fdCount(pid) < kLimit - 8);
        // Accepted until no descriptor is left; the rest wait in the backlog, so accept()
        // keeps failing with EMFILE.
        std::vector<RawConn> conns;
        for (int i = 0; i < kLimit + 8; ++i) {
            conns.emplace_back(server.port());
            REQUIRE(conns.back().ok());
        }
        REQUIRE(waitFor([&] { return fdCount(pid) >= kLimit; }));
        const long before = cpuTicks(pid);
        std::this_thread::sleep_for(1s);  // the window measured, not a synchronisation
        const long used = cpuTicks(pid) - before;
        INFO("CPU time at the descriptor limit: " << used << " ticks in one second ("
                                                  << ::sysconf(_SC_CLK_TCK) << " a second)");
        CHECK(used <= 10);
        // Serves again once descriptors are free.
        conns.clear();
        client::HttpConnection c(client::Endpoint::parse(server.url()),
                                 client::HttpSettings{.connectTimeout = 5s, .ioTimeout = 5s});
        CHECK(waitFor(
            [&] {
                try {
                    return c.request("GET", "/health").status == 200;
                } catch (const std::exception&) {
                    c.close();
                    return false;
                }
            },
            kBound));
    }

    TEST_CASE("the SDK's HTTP client gets the 413 of an upload over the body limit") {
        // Refused from its Content-Length alone: sandboxd answers without reading the body,
        // the client's write of it fails, and the answer waiting on the connection is what
        // the client reports (not "broken pipe").
        DaemonFixture d;
        client::HttpConnection c = d.server.connect();
        const std::string body((128u << 20) + 1, 'u');
        client::HttpResponse r;
        CHECK_NOTHROW(
            r = c.request("PUT", sandboxPath("hostile", "/file/workspace/big.bin"), body));
        CHECK(r.status == 413);
        json error = json::parse(r.body, nullptr, false);
        CHECK(error.is_object());
        if (error.is_object()) CHECK(error["code"] == "payload_too_large");
        // The next request (a fresh connection) is served as usual.
        CHECK(c.request("GET", "/health").status == 200);
    }

    TEST_CASE("an unauthenticated upload is refused with 401 from its head, before its body") {
        DaemonFixture d("secret");
        const int port = d.server.port();
        const std::string big = std::to_string(120ull << 20);  // 125829120
        const std::string put = "PUT " + sandboxPath("hostile", "/file/workspace/big.bin") +
                                " HTTP/1.1\r\nHost: x\r\nContent-Length: " + big + "\r\n";
        const std::string unauthorized = errorBody("Unauthorized", "unauthorized");
        auto refusedFromHead = [&](const std::string& head) {
            RawConn c(port);
            REQUIRE(c.send(head));  // the head only: not a byte of the body
            auto r = c.readToClose(kBound);
            REQUIRE_MESSAGE(r.has_value(), "no answer without the body");
            INFO(*r);
            CHECK(r->rfind("HTTP/1.1 401 ", 0) == 0);  // not "100 Continue" first
            CHECK(rawResponseHeader(*r, "connection") == "close");
            CHECK(rawResponseBody(*r) == unauthorized);
        };
        refusedFromHead(put + "\r\n");
        refusedFromHead(put + "Expect: 100-continue\r\n\r\n");
        refusedFromHead(put + "Authorization: Bearer wrong\r\n\r\n");
        refusedFromHead(requestHead("POST", sandboxPath("hostile", "/exec"), 120ull << 20));
        // The id is checked first, as the router does (§1.2).
        {
            RawConn c(port);
            REQUIRE(c.send(requestHead("PUT", "/v1/sandbox/NOT_AN_ID/file/x", 120ull << 20)));
            auto r = c.readToClose(kBound);
            REQUIRE(r.has_value());
            CHECK(rawResponseStatus(*r) == 400);
            CHECK(rawResponseBody(*r) == errorBody("Invalid sandbox ID format", "invalid_request"));
        }
        // With the key, "100 Continue" comes (after the head check), then the upload is served.
        {
            RawConn c(port);
            REQUIRE(c.send("PUT " + sandboxPath("hostile", "/file/workspace/small.txt") +
                           " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nAuthorization: Bearer "
                           "secret\r\nExpect: 100-continue\r\n\r\n"));
            CHECK(c.readResponse(kBound).rfind("HTTP/1.1 100 ", 0) == 0);
            REQUIRE(c.send("hello"));
            auto r = c.readResponse(kBound);
            INFO(r);
            CHECK(rawResponseStatus(r) == 200);
        }
        // /health needs no key, and a request without a body keeps its connection.
        {
            RawConn c(port);
            REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
            CHECK(rawResponseStatus(c.readResponse(kBound)) == 200);
            REQUIRE(c.send("GET " + sandboxPath("hostile", "/running") +
                           " HTTP/1.1\r\nHost: x\r\n\r\n"));
            auto r = c.readResponse(kBound);
            CHECK(rawResponseStatus(r) == 401);
            CHECK(rawResponseHeader(r, "connection") != "close");
            REQUIRE(c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
            CHECK(rawResponseStatus(c.readResponse(kBound)) == 200);
        }

        // Bodies that do come are not kept: four 120 MiB uploads at once, each sent whole by
        // a client that reads the answer meanwhile, leave sandboxd's peak memory small.
        const long rssBefore = statusKb(d.pid(), "VmRSS");
        REQUIRE(rssBefore > 0);
        std::atomic<int> refused{0};
        std::vector<std::thread> uploads;
        for (int i = 0; i < 4; ++i)
            uploads.emplace_back([&] {
                RawConn c(port);
                if (!c.send(put + "\r\n")) return;
                std::thread reader([&] {
                    auto r = c.readToClose(kBound);
                    if (r && rawResponseStatus(*r) == 401) ++refused;
                });
                static const std::string mib(1 << 20, 'z');
                for (int k = 0; k < 120 && c.send(mib); ++k) {
                }
                reader.join();
            });
        for (auto& t : uploads) t.join();
        CHECK(refused == 4);
        const long peak = statusKb(d.pid(), "VmHWM");
        INFO("sandboxd: VmRSS " << rssBefore << " kB before, VmHWM " << peak << " kB after");
        CHECK(peak < rssBefore + 64 * 1024);
    }

    TEST_CASE("the SDK's HTTP client gets the 401 of an upload refused from its head") {
        // sandboxd answers before the body and stops reading it: the client's write of the
        // body fails, and the answer waiting on the connection is what it reports.
        DaemonFixture d("secret");
        client::HttpConnection c = d.server.connect();
        const std::string body(100u << 20, 'u');
        client::HttpResponse r;
        CHECK_NOTHROW(r = c.request("PUT", sandboxPath("hostile", "/file/workspace/big.bin"), body,
                                    {{"Authorization", "Bearer wrong"}}));
        CHECK(r.status == 401);
        CHECK(r.body == errorBody("Unauthorized", "unauthorized"));
        // The next request (a fresh connection) is served as usual.
        CHECK(c.request("GET", "/health").status == 200);
    }

    TEST_CASE("%00 in a path is refused with 400, never cut short") {
        DaemonFixture d;
        const std::string id = newSandbox(d.http);
        REQUIRE(call(d.http, "PUT", sandboxPath(id, "/file/workspace/a"), "secret").status == 200);
        const std::string why = "Invalid path: it contains a NUL byte (%00)";
        checkBridgeError(call(d.http, "GET", sandboxPath(id, "/file/workspace/a%00.txt")), 400,
                         "invalid_request", why);
        checkBridgeError(call(d.http, "PUT", sandboxPath(id, "/file/workspace/b%00.txt"), "x"), 400,
                         "invalid_request", why);
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + id + "/workspace/b"));
        checkBridgeError(call(d.http, "GET", sandboxPath(id, "/agent/api/ping%00")), 400,
                         "invalid_request", why);
        checkBridgeError(call(d.http, "POST", sandboxPath(id, "/exec%00"), R"({"argv":["true"]})"),
                         400, "invalid_request", why);
        // An encoded '%' before "00" is no NUL.
        CHECK(call(d.http, "PUT", sandboxPath(id, "/file/workspace/c%2500"), "y").status == 200);
    }

    TEST_CASE("clients that hang up on /exec at once do not take the sandbox down") {
        DaemonFixture d;
        const std::string id = newSandbox(d.http);
        // State a restart would lose: /tmp is a private tmpfs of each launch.
        CHECK(sh(d.http, id, "echo kept > /tmp/state; echo ok") == "ok\n");
        const auto agents = agentsAmong(sandboxProcesses(d.pid(), id));
        REQUIRE(agents.size() == 1);
        const int sockets = socketCount(d.pid());
        const std::string body = json{{"argv", {"sh", "-c", "sleep 30"}}}.dump();
        for (int i = 0; i < 30; ++i) {
            RawConn c(d.server.port());
            REQUIRE(c.send(requestHead("POST", sandboxPath(id, "/exec"), body.size(),
                                       "Content-Type: application/json\r\n") +
                           body));
        }  // each closed as soon as its request is sent
        // Every abandoned request is done with once sandboxd holds no more sockets than before.
        CHECK(waitFor([&] { return socketCount(d.pid()) <= sockets; }, kBound));
        CHECK(sh(d.http, id, "cat /tmp/state") == "kept\n");
        CHECK(agentsAmong(sandboxProcesses(d.pid(), id)) == agents);
    }
}  // TEST_SUITE
