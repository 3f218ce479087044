// The error model: typed errors for the sandbox's answers (missing file, bad path, bad token)
// and for transport failures (cannot connect, timeout).
#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

TEST_CASE("a missing file is FileNotFoundError with its path") {
    std::string d = freshDir("nf");
    const auto& sb = shared();
    try {
        sb.readFile(d + "/missing.txt");
        FAIL("no exception");
    } catch (const FileNotFoundError& e) {
        CHECK(e.httpStatus() == 404);
        CHECK(e.path() == d + "/missing.txt");
        CHECK(std::string(e.what()).find("missing.txt") != std::string::npos);
        CHECK(e.operation() == "file.read");
        CHECK(e.code() == "FILE_NOT_FOUND");  // the container API's code, on every transport
    }
    // A directory is not a file.
    CHECK_THROWS_AS(sb.readFile(d), FileNotFoundError);
    // Caught as the base class too.
    CHECK_THROWS_AS(sb.readFile(d + "/missing.txt"), SandboxError);
}

TEST_CASE("a malformed path is ValidationFailedError") {
    const auto& sb = shared();
    const std::string nul("bad\0path", 8);
    CHECK_THROWS_AS(sb.readFile(""), ValidationFailedError);
    CHECK_THROWS_AS(sb.readFile(nul), ValidationFailedError);
    CHECK_THROWS_AS(sb.writeFile(nul, "x"), ValidationFailedError);
    CHECK_THROWS_AS(sb.writeFile("", "x"), ValidationFailedError);
    CHECK_THROWS_AS(sb.mkdir(""), ValidationFailedError);
    CHECK_THROWS_AS(sb.deleteFile(nul), ValidationFailedError);
    CHECK_THROWS_AS(sb.renameFile("", ws() + "/x"), ValidationFailedError);
    CHECK_THROWS_AS(sb.moveFile(ws() + "/x", nul), ValidationFailedError);
    CHECK_THROWS_AS(sb.listFiles(nul), ValidationFailedError);
    CHECK_THROWS_AS(sb.exists(""), ValidationFailedError);
    CHECK_THROWS_AS(sb.readFileStream(nul), ValidationFailedError);
    CHECK_THROWS_AS(sb.readFile(std::string(5000, 'a')), ValidationFailedError);
    try {
        sb.readFile("");
    } catch (const ValidationFailedError& e) {
        CHECK(e.code() == "VALIDATION_FAILED");
        CHECK(e.httpStatus() == 400);
    }
}

TEST_CASE("the API key: AuthenticationError on the bridge when it is wrong or missing") {
    if (!isTcpBridge()) {
        // The embedded default has no key; an agent URL takes no key either. A key given
        // anyway does not get in the way.
        ClientOptions o = clientOptions();
        o.apiKey = "whatever";
        auto sb = getSandbox(Client(o), uniqueName("key"));
        CHECK(sb.exec("echo ok").stdoutText == inSession("ok\n"));
        return;
    }
    for (std::string key : {"wrong", ""}) {
        INFO("key '", key, "'");
        ClientOptions o = clientOptions();
        o.apiKey = key;
        auto sb = getSandbox(Client(o), uniqueName("key"));
        try {
            sb.exec("echo never");
            FAIL("no exception");
        } catch (const AuthenticationError& e) {
            CHECK(e.code() == "unauthorized");
            CHECK(e.httpStatus() == 401);
        }
        CHECK_THROWS_AS(sb.readFile(ws() + "/x"), AuthenticationError);
        CHECK_THROWS_AS(sb.writeFile(ws() + "/x", "x"), AuthenticationError);
        CHECK_THROWS_AS(sb.exists(ws() + "/x"), AuthenticationError);
        CHECK_THROWS_AS(sb.execStream("true"), AuthenticationError);
        CHECK_THROWS_AS(sb.destroy(), AuthenticationError);
    }
    // A client with a bad key does not spoil a good one.
    auto good = freshSandbox("good");
    CHECK(good.exec("echo fine").stdoutText == inSession("fine\n"));
}

TEST_CASE("answers of an unexpected shape are SandboxError, never the JSON library's exception") {
    if (mode() != Mode::Agent) return;  // one fake container API, whatever the suite's mode
    // Valid JSON with fields of the wrong types, where the container API has strings/numbers.
    FakeServer agent([](const std::string&, const std::string& target, const std::string&) {
        if (target == "/api/session/create")
            return httpResponse(200, "application/json", R"({"success":true,"id":"s"})");
        if (target == "/api/execute")
            return httpResponse(200, "application/json",
                                R"({"success":true,"exitCode":"zero","stdout":7,"stderr":[]})");
        if (target == "/api/read")
            return httpResponse(200, "application/json",
                                R"({"success":true,"content":{"a":1},"encoding":5})");
        if (target == "/api/process/list")
            return httpResponse(200, "application/json", R"({"success":true,"processes":[1,2]})");
        if (target == "/api/mkdir")
            return httpResponse(200, "application/json", R"({"success":true,"timestamp":42})");
        return httpResponse(200, "application/json", R"([1,2,3])");
    });
    ClientOptions o;
    o.agentUrl = agent.url();
    o.retryBudget = 0ms;
    Client c(o);
    auto sb = getSandbox(c, "shapes");
    auto onlyOurs = [](const std::function<void()>& call) {
        try {
            call();
        } catch (const SandboxError&) {
            return true;  // ours (any code)
        } catch (const std::exception& e) {
            MESSAGE("foreign exception: " << e.what());
            return false;
        }
        return true;  // tolerated
    };
    CHECK(onlyOurs([&] { sb.exec("true"); }));
    CHECK(onlyOurs([&] { sb.readFile("/workspace/a"); }));
    CHECK(onlyOurs([&] { sb.listProcesses(); }));
    CHECK(onlyOurs([&] { sb.mkdir("/workspace/d"); }));
    CHECK(onlyOurs([&] { sb.exists("/workspace/a"); }));
    CHECK(onlyOurs([&] { sb.listFiles("/workspace"); }));
    CHECK(onlyOurs([&] { sb.getProcessLogs("p"); }));
}

TEST_CASE("nobody listening is ConnectionError") {
    for (auto budget : {0ms, 400ms}) {
        INFO("retry budget ", budget.count(), " ms");
        ClientOptions o;
        o.retryBudget = budget;
        o.connectTimeout = 2s;
        std::string url = "http://127.0.0.1:" + std::to_string(closedPort());
        (isAgent() ? o.agentUrl : o.apiUrl) = url;
        o.apiKey = "k";
        Client c(o);
        auto sb = getSandbox(c, "nobody");
        auto t0 = std::chrono::steady_clock::now();
        try {
            sb.exec("true");
            FAIL("no exception");
        } catch (const ConnectionError& e) {
            CHECK(e.code() == "CONNECTION_FAILED");
            CHECK(e.httpStatus() == 0);
            CHECK(std::string(e.what()).find("127.0.0.1") != std::string::npos);
        }
        CHECK(std::chrono::steady_clock::now() - t0 < budget + 5s);
        CHECK_THROWS_AS(sb.readFile("/workspace/x"), ConnectionError);
        CHECK_THROWS_AS(sb.execStream("true"), ConnectionError);
        CHECK_THROWS_AS(sb.readFileStream("/workspace/x"), TransportError);
    }
    // A unix socket that does not exist.
    ClientOptions u;
    u.apiUrl = "unix:/nonexistent-dir/sandboxd.sock";
    u.retryBudget = 0ms;
    CHECK_THROWS_AS(getSandbox(Client(u), "nobody").exec("true"), ConnectionError);
    // A URL that is not one.
    ClientOptions bad;
    bad.apiUrl = "ftp://example";
    CHECK_THROWS_AS(Client{bad}, ValidationFailedError);
}

TEST_CASE("a request that takes longer than requestTimeout is TimeoutError") {
    const std::string name = uniqueName("slow");
    // The sandbox exists first, made with the default timeouts (start-up is not what is timed
    // here, and may take longer than 300 ms on a loaded machine or under sanitizers).
    getSandbox(Client(clientOptions()), name).exec("true");
    ClientOptions o = clientOptions();
    o.requestTimeout = 300ms;
    o.retryBudget = 0ms;
    Client c(o);
    auto sb = getSandbox(c, name);
    auto t0 = std::chrono::steady_clock::now();
    try {
        sb.exec("sleep 3");
        FAIL("no exception");
    } catch (const TimeoutError& e) {
        CHECK(e.code() == "TIMEOUT");
        CHECK(e.operation() == "command.execute");
    }
    CHECK(std::chrono::steady_clock::now() - t0 < 2500ms);
    // A fast request on the same client still works (a fresh connection).
    auto other = getSandbox(c, sb.id(), {.enableDefaultSession = false});
    CHECK(other.exec("echo quick").stdoutText == "quick\n");
}

}  // namespace
}  // namespace sandbox::testing::sdk
