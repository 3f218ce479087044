// POST /api/git/checkout (§3.6): clones from a local bare repository over file:// (these machines
// have no network), branch, targetDir and depth; every error response; credential redaction.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "agent/agent_test_util.hpp"
#include "support/loopback.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using sandbox::testing::TempDir;
using namespace sandbox::testing::agent;
namespace fs = std::filesystem;

namespace {

int sh(const std::string& script) {
    std::string cmd = "bash -ec " + std::string("'") + script + "' >/dev/null 2>&1";
    return std::system(cmd.c_str());
}

// A bare repository with 3 commits on main and a branch "feature" with one more file.
struct BareRepo {
    TempDir dir;
    std::string url;
    BareRepo() {
        std::string d = dir.path();
        int rc = sh("cd " + d +
                    " && git init -q -b main src && cd src"
                    " && export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com"
                    " GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com"
                    " && echo one > README && git add README && git commit -q -m one"
                    " && echo two >> README && git commit -q -am two"
                    " && echo three >> README && git commit -q -am three"
                    " && git checkout -q -b feature && echo f > feature.txt && git add feature.txt"
                    " && git commit -q -m feature && git checkout -q main"
                    " && cd .. && git clone -q --bare src repo.git");
        REQUIRE_MESSAGE(rc == 0, "creating the test repository with git failed");
        url = "file://" + d + "/repo.git";
    }
};

std::string gitOut(const std::string& dir, const std::string& args) {
    std::string cmd = "git -C '" + dir + "' " + args + " 2>/dev/null";
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[256];
        while (auto n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
        ::pclose(p);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

// A TCP port that accepts connections (kernel backlog) and never answers: a clone from it hangs.
using SilentServer = sandbox::testing::LoopbackListener;

void checkGitError(const Reply& r, int status, const std::string& code) {
    checkError(r, status, code);
    const json& c = r.body["context"];
    CHECK(c["repository"].is_string());
    CHECK(c["targetDir"].is_string());
    CHECK(c["exitCode"].is_number_integer());
    CHECK(c["stderr"].is_string());
}

}  // namespace

TEST_CASE("git checkout: default branch into <workspace>/<repo name>") {
    BareRepo repo;
    AgentFixture a;
    auto r = post(a, "/api/git/checkout", {{"repoUrl", repo.url}});
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    CHECK(r.body["success"] == true);
    CHECK(r.body["repoUrl"] == repo.url);
    CHECK(r.body["branch"] == "main");
    CHECK(r.body["targetDir"] == a.workspace() + "/repo");
    CHECK(isIsoTimestamp(r.body["timestamp"]));
    std::set<std::string> keys;
    for (auto& [k, v] : r.body.items()) keys.insert(k);
    CHECK(keys == std::set<std::string>{"success", "repoUrl", "branch", "targetDir", "timestamp"});
    CHECK(readFile(a.workspace() + "/repo/README") == "one\ntwo\nthree\n");
    CHECK(gitOut(a.workspace() + "/repo", "rev-list --count HEAD") == "3");
    CHECK_FALSE(pathExists(a.workspace() + "/repo/feature.txt"));
}

TEST_CASE("git checkout: branch, relative targetDir, depth") {
    BareRepo repo;
    AgentFixture a;
    SUBCASE("branch + relative targetDir (relative to the session's directory)") {
        fs::create_directories(a.workspace() + "/cwd");
        auto s = post(a, "/api/session/create", {{"id", "g1"}, {"cwd", a.workspace() + "/cwd"}});
        REQUIRE(s.status == 200);
        auto r = post(a, "/api/git/checkout",
                      {{"repoUrl", repo.url},
                       {"branch", "feature"},
                       {"targetDir", "sub/clone"},
                       {"sessionId", "g1"}});
        REQUIRE_MESSAGE(r.status == 200, r.raw);
        CHECK(r.body["branch"] == "feature");
        CHECK(r.body["targetDir"] == a.workspace() + "/cwd/sub/clone");
        CHECK(readFile(a.workspace() + "/cwd/sub/clone/feature.txt") == "f\n");
    }
    SUBCASE("the session may come from the X-Session-Id header") {
        fs::create_directories(a.workspace() + "/hdr");
        REQUIRE(post(a, "/api/session/create", {{"id", "g2"}, {"cwd", a.workspace() + "/hdr"}})
                    .status == 200);
        auto r = post(a, "/api/git/checkout", {{"repoUrl", repo.url}, {"targetDir", "c"}},
                      {{"X-Session-Id", "g2"}});
        REQUIRE_MESSAGE(r.status == 200, r.raw);
        CHECK(r.body["targetDir"] == a.workspace() + "/hdr/c");
    }
    SUBCASE("depth 1 is a shallow clone; branch and depth together") {
        auto r =
            post(a, "/api/git/checkout",
                 {{"repoUrl", repo.url}, {"targetDir", a.workspace() + "/shallow"}, {"depth", 1}});
        REQUIRE_MESSAGE(r.status == 200, r.raw);
        CHECK(gitOut(a.workspace() + "/shallow", "rev-list --count HEAD") == "1");
        CHECK(gitOut(a.workspace() + "/shallow", "rev-parse --is-shallow-repository") == "true");
        auto b = post(a, "/api/git/checkout",
                      {{"repoUrl", repo.url},
                       {"targetDir", a.workspace() + "/shallowf"},
                       {"depth", 2},
                       {"branch", "feature"},
                       {"timeoutMs", 60000}});
        REQUIRE_MESSAGE(b.status == 200, b.raw);
        CHECK(b.body["branch"] == "feature");
        CHECK(gitOut(a.workspace() + "/shallowf", "rev-list --count HEAD") == "2");
    }
}

TEST_CASE("git checkout: invalid URLs are 400 INVALID_GIT_URL") {
    AgentFixture a;
    std::string marker = a.workspace() + "/pwned";
    std::vector<json> bodies = {
        json::object(),
        {{"repoUrl", ""}},
        {{"repoUrl", "   "}},
        {{"repoUrl", 42}},
        {{"repoUrl", nullptr}},
        {{"repoUrl", std::string("file:///x\0y", 11)}},
        {{"repoUrl", "https://example.com/" + std::string(2100, 'a')}},
        {{"repoUrl", "ext::sh -c touch% " + marker}},
        {{"repoUrl", "--upload-pack=touch " + marker}},
        {{"repoUrl", "javascript://x/y"}},
        {{"repoUrl", "https://example.com/a\nb"}},
    };
    for (const auto& b : bodies) {
        auto r = post(a, "/api/git/checkout", b);
        INFO(b.dump());
        checkError(r, 400, "INVALID_GIT_URL");
        if (r.body.is_object()) {
            const json& errs = r.body["context"]["validationErrors"];
            REQUIRE(errs.is_array());
            CHECK(errs[0]["field"] == "repoUrl");
        }
    }
    CHECK_FALSE(pathExists(marker));
}

TEST_CASE("git checkout: other invalid requests are 400 VALIDATION_FAILED") {
    AgentFixture a;
    const std::string url = "file:///nonexistent/repo.git";
    struct Case {
        json body;
        const char* fieldCode;
    };
    std::vector<Case> cases = {
        {{{"repoUrl", url}, {"timeoutMs", 0}}, "INVALID_TIMEOUT"},
        {{{"repoUrl", url}, {"timeoutMs", -5}}, "INVALID_TIMEOUT"},
        {{{"repoUrl", url}, {"timeoutMs", 1.5}}, "INVALID_TIMEOUT"},
        {{{"repoUrl", url}, {"timeoutMs", "600"}}, "INVALID_TIMEOUT"},
        {{{"repoUrl", url}, {"depth", 0}}, "INVALID_DEPTH"},
        {{{"repoUrl", url}, {"depth", "1"}}, "INVALID_DEPTH"},
        {{{"repoUrl", url}, {"branch", ""}}, "INVALID_BRANCH"},
        {{{"repoUrl", url}, {"branch", "-x"}}, "INVALID_BRANCH"},
        {{{"repoUrl", url}, {"branch", 3}}, "INVALID_TYPE"},
        {{{"repoUrl", url}, {"targetDir", ""}}, "INVALID_PATH"},
        {{{"repoUrl", url}, {"targetDir", std::string("a\0b", 3)}}, "INVALID_PATH"},
        {{{"repoUrl", url}, {"sessionId", "  "}}, "INVALID_SESSION_ID"},
    };
    for (const auto& c : cases) {
        INFO(c.body.dump());
        checkValidation(post(a, "/api/git/checkout", c.body), c.fieldCode);
    }
    checkValidation(postRaw(a, "/api/git/checkout", "{not json"));
}

TEST_CASE("git checkout: clone failures map to the git error codes") {
    BareRepo repo;
    AgentFixture a;
    SUBCASE("missing repository: 404 GIT_REPOSITORY_NOT_FOUND, nothing left behind") {
        std::string missing = "file://" + repo.dir.path() + "/nope.git";
        auto r = post(a, "/api/git/checkout", {{"repoUrl", missing}});
        checkGitError(r, 404, "GIT_REPOSITORY_NOT_FOUND");
        CHECK(r.body["context"]["exitCode"] == 128);
        CHECK(r.body["context"]["repository"] == missing);
        CHECK(r.body["context"]["targetDir"] == a.workspace() + "/nope");
        CHECK(r.body["message"].get<std::string>().rfind(
                  "Failed to clone repository '" + missing + "': ", 0) == 0);
        CHECK(r.body["suggestion"].is_string());
        CHECK_FALSE(pathExists(a.workspace() + "/nope"));
    }
    SUBCASE("missing branch: 404 GIT_BRANCH_NOT_FOUND") {
        auto r = post(a, "/api/git/checkout", {{"repoUrl", repo.url}, {"branch", "nope"}});
        checkGitError(r, 404, "GIT_BRANCH_NOT_FOUND");
        CHECK(r.body["context"]["branch"] == "nope");
        CHECK(r.body["context"]["stderr"].get<std::string>().find("nope") != std::string::npos);
        CHECK_FALSE(pathExists(a.workspace() + "/repo"));
    }
    SUBCASE("non-empty target directory: 500 GIT_OPERATION_FAILED, the directory is kept") {
        fs::create_directories(a.workspace() + "/busy");
        writeFile(a.workspace() + "/busy/keep", "k");
        auto r = post(a, "/api/git/checkout",
                      {{"repoUrl", repo.url}, {"targetDir", a.workspace() + "/busy"}});
        checkGitError(r, 500, "GIT_OPERATION_FAILED");
        CHECK(readFile(a.workspace() + "/busy/keep") == "k");
    }
    SUBCASE("unreachable server with credentials: redacted everywhere") {
        int port = 0;
        {
            SilentServer s;  // a port that was ours and is closed again: connections are refused
            port = s.port;
        }
        std::string url = "http://alice:hunter2secret@127.0.0.1:" + std::to_string(port) + "/r.git";
        auto r = post(a, "/api/git/checkout", {{"repoUrl", url}, {"targetDir", "x"}});
        INFO(r.raw);
        CHECK(r.status >= 400);
        CHECK(r.body["code"].get<std::string>().rfind("GIT_", 0) == 0);
        CHECK(r.raw.find("hunter2secret") == std::string::npos);
        CHECK(r.raw.find("alice") == std::string::npos);
        CHECK(r.body["context"]["repository"] ==
              "http://***@127.0.0.1:" + std::to_string(port) + "/r.git");
    }
}

TEST_CASE("git checkout: a clone that outlives timeoutMs is killed: 502 GIT_NETWORK_ERROR") {
    AgentFixture a;
    SilentServer s;
    std::string url = "http://bob:t0psecret@127.0.0.1:" + std::to_string(s.port) + "/slow.git";
    auto r = post(a, "/api/git/checkout",
                  {{"repoUrl", url}, {"timeoutMs", 1500}, {"targetDir", "slow"}});
    checkGitError(r, 502, "GIT_NETWORK_ERROR");
    std::string shown = "http://***@127.0.0.1:" + std::to_string(s.port) + "/slow.git";
    CHECK(r.body["message"] == "Git clone timed out after 1.5 seconds for '" + shown + "'");
    CHECK(r.body["context"]["exitCode"] == 124);
    CHECK(r.body["context"]["repository"] == shown);
    CHECK(r.raw.find("t0psecret") == std::string::npos);
    CHECK_FALSE(pathExists(a.workspace() + "/slow"));
    // The clone is gone: no process of the agent's tree still names the URL.
    CHECK(waitFor([&] {
        for (const auto& e : fs::directory_iterator("/proc")) {
            std::string name = e.path().filename().string();
            if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
            std::string cmd = readFile(e.path().string() + "/cmdline");
            if (cmd.find("t0psecret") != std::string::npos &&
                cmd.find("slow.git") != std::string::npos && !processGone(std::stoi(name)))
                return false;
        }
        return true;
    }));
}
