// gitCheckout, watch and checkChanges through the SDK on every transport: a local bare
// repository made inside the sandbox with exec (no network here), the git error classes,
// credential redaction, watch events and the 10,000-file burst, the version tokens. On the
// narrow bridge every one of them is a typed UnsupportedOperationError.
#include <set>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

// A bare repository (3 commits on main, a branch "feature") made in the sandbox with git.
struct Repo {
    std::string dir, name, url;
};

Repo makeRepo(const Sandbox& sb) {
    Repo r;
    r.dir = freshDir("git");
    r.name = uniqueName("repo");
    r.url = "file://" + r.dir + "/" + r.name + ".git";
    auto e =
        sb.exec("set -e; cd '" + r.dir +
                "'; export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t "
                "GIT_COMMITTER_EMAIL=t@example.com HOME=/tmp; git init -q -b main src; cd src; "
                "echo one > README; git add README; git commit -q -m one; echo two >> README; "
                "git commit -q -am two; echo three >> README; git commit -q -am three; "
                "git checkout -q -b feature; echo f > feature.txt; git add feature.txt; "
                "git commit -q -m feature; git checkout -q main; cd ..; git clone -q --bare src '" +
                r.name + ".git'");
    REQUIRE_MESSAGE(e.exitCode == 0, e.stderrText);
    return r;
}

std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
}

// Reads watch events until `pred` holds for one of them (the stream's order makes that a
// marker: everything before it was delivered).
std::vector<FileWatchEvent> readUntil(FileWatch& w,
                                      const std::function<bool(const FileWatchEvent&)>& pred) {
    std::vector<FileWatchEvent> out;
    while (auto ev = w.next()) {
        out.push_back(*ev);
        if (pred(*ev)) break;
    }
    return out;
}

std::function<bool(const FileWatchEvent&)> created(const std::string& path) {
    return [path](const FileWatchEvent& e) {
        return e.type == FileWatchEvent::Type::Event && e.eventType == "create" && e.path == path;
    };
}

TEST_CASE("narrow bridge: gitCheckout, watch and checkChanges say which transport they need") {
    if (!isNarrow()) return;
    const auto& sb = shared();
    auto check = [](auto&& f) {
        try {
            f();
            FAIL("no exception");
        } catch (const UnsupportedOperationError& e) {
            CHECK(e.code() == "UNSUPPORTED_OPERATION");
            CHECK(std::string(e.what()).find("agent transport") != std::string::npos);
            CHECK(std::string(e.what()).find("container API") != std::string::npos);
        }
    };
    check([&] { sb.gitCheckout("file:///workspace/x.git"); });
    check([&] { sb.watch(ws()); });
    check([&] { sb.checkChanges(ws()); });
    auto s = sb.getSession("narrow-git");
    check([&] { s.gitCheckout("file:///workspace/x.git"); });
    check([&] { s.watch(ws()); });
}

TEST_CASE("gitCheckout: default target, branch, targetDir, depth") {
    if (isNarrow()) return;
    const auto& sb = shared();
    Repo repo = makeRepo(sb);

    auto r = sb.gitCheckout(repo.url);
    CHECK(r.success);
    CHECK(r.repoUrl == repo.url);
    CHECK(r.branch == "main");
    CHECK(r.targetDir == ws() + "/" + repo.name);
    CHECK_FALSE(r.timestamp.empty());
    CHECK(sb.readFile(r.targetDir + "/README").content == "one\ntwo\nthree\n");
    CHECK(trimmed(sb.exec("git -C '" + r.targetDir + "' rev-list --count HEAD").stdoutText) == "3");

    auto b = sb.gitCheckout(
        repo.url,
        {.branch = "feature", .targetDir = repo.dir + "/shallow", .depth = 1, .cloneTimeout = 60s});
    CHECK(b.branch == "feature");
    CHECK(b.targetDir == repo.dir + "/shallow");
    CHECK(sb.exists(repo.dir + "/shallow/feature.txt").exists);
    CHECK(trimmed(sb.exec("git -C '" + b.targetDir + "' rev-list --count HEAD").stdoutText) == "1");

    // In a session, a relative targetDir is relative to the session's directory.
    auto s = sb.createSession({.cwd = repo.dir});
    auto c = s.gitCheckout(repo.url, {.targetDir = "rel/clone"});
    CHECK(c.targetDir == repo.dir + "/rel/clone");
    CHECK(sb.exists(repo.dir + "/rel/clone/README").exists);
}

TEST_CASE("gitCheckout: errors are the typed git errors, credentials redacted") {
    if (isNarrow()) return;
    const auto& sb = shared();
    Repo repo = makeRepo(sb);
    CHECK_THROWS_AS(sb.gitCheckout(""), InvalidGitUrlError);
    CHECK_THROWS_AS(sb.gitCheckout("ext::sh -c id"), InvalidGitUrlError);
    CHECK_THROWS_AS(sb.gitCheckout(repo.url, {.depth = 0}), ValidationFailedError);
    CHECK_THROWS_AS(sb.gitCheckout(repo.url, {.cloneTimeout = 0ms}), ValidationFailedError);
    try {
        sb.gitCheckout("file://" + repo.dir + "/missing.git");
        FAIL("no exception");
    } catch (const GitRepositoryNotFoundError& e) {
        CHECK(e.httpStatus() == 404);
        CHECK(e.code() == "GIT_REPOSITORY_NOT_FOUND");
        CHECK(e.contextString("repository") == "file://" + repo.dir + "/missing.git");
    }
    try {
        sb.gitCheckout(repo.url, {.branch = "no-such-branch", .targetDir = repo.dir + "/nb"});
        FAIL("no exception");
    } catch (const GitBranchNotFoundError& e) {
        CHECK(e.httpStatus() == 404);
        CHECK(e.contextString("branch") == "no-such-branch");
    }
    CHECK_FALSE(sb.exists(repo.dir + "/nb").exists);
    // Errors are GitError too (the base of the git classes).
    CHECK_THROWS_AS(sb.gitCheckout(repo.url, {.targetDir = repo.dir}), GitError);
}

TEST_CASE("gitCheckout: a clone timeout is GitNetworkError and the token never shows") {
    if (isNarrow()) return;
    const auto& sb = shared();
    std::string d = freshDir("slowgit");
    // A server in the sandbox that accepts connections and never answers.
    auto e = sb.exec("cd '" + d +
                     "' && (nohup python3 -c 'import socket,sys,time\n"
                     "s=socket.socket(); s.bind((\"127.0.0.1\",0)); s.listen(8)\n"
                     "print(s.getsockname()[1], flush=True); time.sleep(120)' > port < /dev/null "
                     "2>&1 & echo $! > pid)");
    REQUIRE_MESSAGE(e.exitCode == 0, e.stderrText);
    std::string port;
    REQUIRE(eventually([&] {
        if (!sb.exists(d + "/port").exists) return false;
        port = trimmed(sb.readFile(d + "/port").content);
        return !port.empty();
    }));
    std::string url = "http://user:sup3rs3cret@127.0.0.1:" + port + "/r.git";
    try {
        sb.gitCheckout(url, {.targetDir = d + "/clone", .cloneTimeout = 1500ms});
        FAIL("no exception");
    } catch (const GitNetworkError& err) {
        CHECK(err.httpStatus() == 502);
        CHECK(std::string(err.what()).find("timed out") != std::string::npos);
        CHECK(std::string(err.what()).find("sup3rs3cret") == std::string::npos);
        CHECK(err.context().dump().find("sup3rs3cret") == std::string::npos);
        CHECK(err.contextString("repository") == "http://***@127.0.0.1:" + port + "/r.git");
    }
    sb.exec("kill $(cat '" + d + "/pid')");
}

TEST_CASE("watch: returns once established, then file events in nested directories") {
    if (isNarrow()) return;
    const auto& sb = shared();
    std::string d = freshDir("watch");
    sb.mkdir(d + "/pre");
    auto w = sb.watch(d);
    CHECK(w.path() == d);
    CHECK(w.watchId().rfind("watch-", 0) == 0);
    auto first = w.next();
    REQUIRE(first);
    CHECK(first->type == FileWatchEvent::Type::Watching);
    CHECK(first->path == d);
    CHECK(first->watchId == w.watchId());

    sb.writeFile(d + "/pre/a.txt", "1");
    sb.mkdir(d + "/n/m", {.recursive = true});
    sb.writeFile(d + "/n/m/b.txt", "2");
    sb.moveFile(d + "/pre/a.txt", d + "/n/a.txt");
    sb.deleteFile(d + "/n/m/b.txt");
    sb.writeFile(d + "/zz-done", "");
    auto events = readUntil(w, created(d + "/zz-done"));
    std::vector<std::string> seen;
    for (const auto& e : events) {
        CHECK(e.type == FileWatchEvent::Type::Event);
        CHECK_FALSE(e.timestamp.empty());
        seen.push_back(e.eventType + " " + e.path + (e.isDirectory ? "/" : ""));
    }
    INFO(seen.size());
    for (const std::string& want :
         {"create " + d + "/pre/a.txt", "create " + d + "/n/", "create " + d + "/n/m/",
          "create " + d + "/n/m/b.txt", "move_from " + d + "/pre/a.txt",
          "move_to " + d + "/n/a.txt", "delete " + d + "/n/m/b.txt"})
        CHECK_MESSAGE(std::find(seen.begin(), seen.end(), want) != seen.end(), want);
}

TEST_CASE("watch: include filter; destroying the stream stops the watch") {
    if (isNarrow()) return;
    const auto& sb = shared();
    std::string d = freshDir("watchf");
    {
        auto w = sb.watch(d, {.include = {"*.md"}});
        sb.writeFile(d + "/skip.txt", "");
        sb.writeFile(d + "/keep.md", "");
        sb.writeFile(d + "/zz.md", "");
        auto events = readUntil(w, created(d + "/zz.md"));
        for (const auto& e : events)
            if (e.type == FileWatchEvent::Type::Event) CHECK(e.path.ends_with(".md"));
        CHECK(std::any_of(events.begin(), events.end(), created(d + "/keep.md")));
    }
    // A watch with no stream left is stopped: the next one with the same options is a new
    // watch (a new id), once the server noticed the closed stream.
    std::string id = sb.watch(d).watchId();
    CHECK(eventually([&] { return sb.watch(d).watchId() != id; }));
    CHECK_THROWS_AS(sb.watch(d + "/missing"), FileNotFoundError);
    CHECK_THROWS_AS(sb.watch("/etc"), PermissionDeniedError);
    CHECK_THROWS_AS(sb.watch(d, {.include = {"*.a"}, .exclude = {"*.b"}}), ValidationFailedError);
}

TEST_CASE("watch: a burst of 10,000 files arrives with the right final state") {
    if (isNarrow()) return;
    const auto& sb = shared();
    std::string d = freshDir("burst");
    auto w = sb.watch(d);
    auto e = sb.exec("cd '" + d +
                     "' && for i in $(seq 0 99); do mkdir -p d$i/sub; for j in $(seq 0 99); do "
                     "echo $j > d$i/sub/f$j.txt; done; done && : > zzzz-sentinel");
    REQUIRE(e.exitCode == 0);
    auto events = readUntil(w, created(d + "/zzzz-sentinel"));
    std::set<std::string> state;
    for (const auto& ev : events) {
        std::string p = ev.path + (ev.isDirectory ? "/" : "");
        if (ev.eventType == "create" || ev.eventType == "move_to") state.insert(p);
        if (ev.eventType == "delete" || ev.eventType == "move_from") state.erase(p);
    }
    CHECK(state.size() == 10201);
    CHECK(state.count(d + "/d57/sub/f42.txt") == 1);
    CHECK(state.count(d + "/d99/sub/") == 1);
}

TEST_CASE("checkChanges: unchanged, changed, resync and bad versions") {
    if (isNarrow()) return;
    const auto& sb = shared();
    std::string d = freshDir("check");
    auto c0 = sb.checkChanges(d);
    CHECK(c0.success);
    CHECK(c0.status == "unchanged");
    CHECK_FALSE(c0.reason);
    CHECK(c0.version.rfind("watch-", 0) == 0);
    CHECK(sb.checkChanges(d, {.since = c0.version}).status == "unchanged");
    sb.writeFile(d + "/x", "1");
    auto c1 = sb.checkChanges(d, {.since = c0.version});
    CHECK(c1.status == "changed");
    CHECK(c1.version != c0.version);
    CHECK(sb.checkChanges(d, {.since = c1.version}).status == "unchanged");
    auto other = sb.checkChanges(d, {.since = "watch-1-1:0"});
    CHECK(other.status == "resync");
    CHECK(other.reason == "restarted");
    CHECK_THROWS_AS(sb.checkChanges(d, {.since = "nonsense"}), ValidationFailedError);
    CHECK_THROWS_AS(sb.checkChanges(d + "/missing"), FileNotFoundError);
    // The session variant is the same call.
    auto s = sb.getSession(uniqueName("cs"));
    CHECK(s.checkChanges(d, {.since = c1.version}).status == "unchanged");
}

}  // namespace
}  // namespace sandbox::testing::sdk
