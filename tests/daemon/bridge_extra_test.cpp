// sandboxd beyond the conformance rows: sessions under concurrency, persist -> destroy ->
// hydrate round trips (SHA-256 of every file), hostile archives, the warm pool draining and
// refilling, the OpenAPI document and page, and authentication on every route.
#include <sys/stat.h>

#include <fstream>
#include <thread>

#include "daemon/daemon_test_util.hpp"
#include "daemon/tar_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;

namespace {

// "sha  path" lines for every regular file, plus the symlinks and directories, sorted.
std::string workspaceDigest(client::HttpConnection& c, const std::string& id) {
    return sh(c, id,
              "cd /workspace && find . -type f -print0 | sort -z | xargs -0 -r sha256sum && "
              "find . -type l -printf 'L %p -> %l\\n' | sort && "
              "find . -type d -printf 'D %p %m\\n' | sort && "
              "find . -type f -printf 'M %p %m %s\\n' | sort");
}

std::string fileDigest(const std::string& path) {
    return sha256Hex(readFile(path));
}

}  // namespace

TEST_SUITE("daemon.bridge_extra") {
    TEST_CASE("sessions under concurrency: each exec sees its own session's env and cwd") {
        DaemonFixture d;
        const std::string id = newSandbox(d.http);
        sh(d.http, id, "mkdir -p /workspace/one /workspace/two");
        for (const char* s : {"one", "two"}) {
            json body = {{"id", s}, {"cwd", std::string("/workspace/") + s}, {"env", {{"WHO", s}}}};
            REQUIRE(call(d.http, "POST", sandboxPath(id, "/session"), body.dump()).status == 200);
        }
        std::atomic<int> good{0}, bad{0};
        std::vector<std::thread> threads;
        for (int t = 0; t < 6; ++t)
            threads.emplace_back([&, t] {
                auto c = d.server.connect();
                for (int i = 0; i < 5; ++i) {
                    std::string s = (t + i) % 2 ? "one" : "two";
                    auto r = exec(
                        c, id,
                        json{{"argv", {"sh", "-c", "cd /tmp; export WHO=changed; echo \"$WHO\""}}},
                        {{"Session-Id", s}});
                    auto q = exec(c, id, json{{"argv", {"sh", "-c", "echo \"$WHO $PWD\""}}},
                                  {{"Session-Id", s}});
                    bool ok = r.out == "changed\n" && q.out == s + " /workspace/" + s + "\n";
                    (ok ? good : bad)++;
                }
            });
        for (auto& t : threads) t.join();
        CHECK(bad == 0);
        CHECK(good == 30);
        // Without a session: neither.
        CHECK(sh(d.http, id, "echo \"[$WHO] $PWD\"") == "[] /workspace\n");
        // A deleted session is gone; its id can be created afresh.
        CHECK(call(d.http, "DELETE", sandboxPath(id, "/session/one")).status == 200);
        CHECK(call(d.http, "DELETE", sandboxPath(id, "/session/one")).status == 502);
        CHECK(call(d.http, "POST", sandboxPath(id, "/session"), R"({"id":"one"})").status == 200);
    }

    TEST_CASE("a session body nested a million levels deep does not bring sandboxd down") {
        // The body is forwarded to the agent re-serialised, which recursed once per level and
        // overflowed sandboxd's stack. Nesting beyond 1024 levels now reads as no body ({}).
        DaemonFixture d;
        const std::string id = newSandbox(d.http);
        const std::size_t n = 1000000;
        const std::string body =
            R"({"id":"deep","x":)" + std::string(n, '[') + std::string(n, ']') + "}";
        auto r = call(d.http, "POST", sandboxPath(id, "/session"), body);
        CHECK(r.status == 200);
        CHECK(r.body["id"].get<std::string>().rfind("session-", 0) == 0);
        CHECK(call(d.http, "GET", "/health").status == 200);
        CHECK(sh(d.http, id, "echo ok") == "ok\n");
    }

    TEST_CASE("persist -> destroy -> hydrate restores every file byte for byte") {
        DaemonFixture d;
        const std::string id = newSandbox(d.http);
        // Files of every kind the archive carries, including a 5 MiB random one and names with
        // spaces and UTF-8.
        std::string big = randomBytes(5u << 20, 7);
        REQUIRE(call(d.http, "PUT", sandboxPath(id, "/file/workspace/data/big.bin"), big).status ==
                200);
        sh(d.http, id,
           "cd /workspace && mkdir -p 'dir with space/sub' empty-dir .hidden && "
           "printf 'caf\\xc3\\xa9' > 'dir with space/sub/caf\xc3\xa9.txt' && : > empty && "
           "echo secret > .hidden/x && ln -s data/big.bin link && ln -s /usr/bin/python3 py && "
           "chmod 600 .hidden/x && chmod 755 empty-dir && "
           "head -c 300000 /dev/urandom > data/rand && mkfifo fifo && "
           "printf raw > \"$(printf 'not-utf8-\\377')\"");
        const std::string before = workspaceDigest(d.http, id);
        auto tar = call(d.http, "POST", sandboxPath(id, "/persist"));
        REQUIRE(tar.status == 200);
        CHECK(tar.raw.size() % 512 == 0);
        REQUIRE(readTar(tar.raw));
        CHECK((*readTar(tar.raw))["./fifo"].type == AE_IFIFO);
        REQUIRE(call(d.http, "DELETE", sandboxPath(id)).status == 204);
        CHECK(sh(d.http, id, "ls -A /workspace") == "");  // a fresh, empty sandbox
        auto h = call(d.http, "POST", sandboxPath(id, "/hydrate"), tar.raw);
        CHECK(h.status == 200);
        CHECK(h.raw == R"({"ok":true})");
        CHECK(workspaceDigest(d.http, id) == before);
        CHECK(sha256Hex(call(d.http, "GET", sandboxPath(id, "/file/workspace/data/big.bin")).raw) ==
              sha256Hex(big));
        // Into another sandbox, gzip-compressed: the same files.
        const std::string other = newSandbox(d.http);
        auto members = readTar(tar.raw);
        std::vector<TarMember> again;
        for (const auto& [name, m] : *members)
            if (m.type == AE_IFREG) again.push_back({.name = name, .data = m.data});
        CHECK(call(d.http, "POST", sandboxPath(other, "/hydrate"), makeTar(again, true)).status ==
              200);
        CHECK(sh(d.http, other, "sha256sum /workspace/data/big.bin | cut -c1-64") ==
              sha256Hex(big) + "\n");
    }

    TEST_CASE("hydrate: hostile archives write nothing outside /workspace") {
        DaemonFixture d;
        const std::string id = newSandbox(d.http);
        // What a write outside the workspace could reach on the host, watched before and after.
        const std::string root = d.seen(d.stateDir() + "/sandboxes/" + id);
        const std::vector<std::string> watched = {"/etc/passwd", "/etc/hostname"};
        std::map<std::string, std::string> hashes;
        for (const auto& f : watched) hashes[f] = fileDigest(f);
        auto refused = [&](const std::vector<TarMember>& members, const std::string& why) {
            auto r = call(d.http, "POST", sandboxPath(id, "/hydrate"), makeTar(members));
            INFO(r.raw);
            CHECK(r.status == 502);
            CHECK(r.body["code"] == "workspace_archive_write_error");
            CHECK(r.body["error"].get<std::string>().find(why) != std::string::npos);
        };
        // Refused whole, before anything is written (the harmless first member included).
        const TarMember first{.name = "first.txt", .data = "1"};
        refused({first, {.name = "/etc/evil", .data = "x"}}, "absolute path refused");
        refused({first, {.name = "../evil", .data = "x"}}, "'..'");
        refused({first, {.name = "a/../../evil", .data = "x"}}, "'..'");
        refused({first, {.name = "hl", .hardlink = "../../../etc/passwd"}}, "'..'");
        refused({first, {.name = "hl", .hardlink = "/etc/passwd"}}, "absolute path");
        refused({first, {.name = "null", .type = AE_IFCHR}}, "device nodes");
        refused({first, {.name = "disk", .type = AE_IFBLK}}, "device nodes");
        refused(
            {first,
             {.name = "huge", .data = "end!", .size = 8ll << 30, .sparse = {{(8ll << 30) - 4, 4}}}},
            "exceeds the limit");
        CHECK(sh(d.http, id, "ls -A /workspace") == "");
        // A symlink out, then a member through it: the link is made, the write through it is
        // refused (no link is ever followed), nothing lands outside.
        refused(
            {{.name = "out", .type = AE_IFLNK, .link = "/etc"}, {.name = "out/evil", .data = "x"}},
            "cannot reach its directory");
        refused(
            {{.name = "up", .type = AE_IFLNK, .link = "../.."}, {.name = "up/evil", .data = "x"}},
            "cannot reach its directory");
        // A link the sandbox planted itself, pointing at the host-side state directory.
        sh(d.http, id, "ln -s /run /workspace/planted && ln -s /etc/hostname /workspace/f");
        refused({{.name = "planted/agent.sock", .data = "x"}}, "cannot reach its directory");
        // A member named like an existing link replaces the link, not its target.
        CHECK(call(d.http, "POST", sandboxPath(id, "/hydrate"),
                   makeTar({{.name = "f", .data = "mine"}}))
                  .status == 200);
        CHECK(sh(d.http, id, "test -L /workspace/f || cat /workspace/f") == "mine");
        // A hard link to a file inside is fine; set-id bits are dropped.
        CHECK(call(d.http, "POST", sandboxPath(id, "/hydrate"),
                   makeTar({{.name = "t.txt", .data = "t", .perm = 04755},
                            {.name = "t2", .hardlink = "t.txt"}}))
                  .status == 200);
        CHECK(sh(d.http, id, "stat -c '%a %h' /workspace/t.txt; cat /workspace/t2") == "755 2\nt");
        // A big sparse member within the limit keeps its holes.
        CHECK(call(d.http, "POST", sandboxPath(id, "/hydrate"),
                   makeTar({{.name = "sparse",
                             .data = "end!",
                             .size = 1ll << 30,
                             .sparse = {{(1ll << 30) - 4, 4}}}}))
                  .status == 200);
        struct stat st {};
        REQUIRE(::stat((root + "/workspace/sparse").c_str(), &st) == 0);
        CHECK(st.st_size == (1ll << 30));
        CHECK(st.st_blocks * 512 < (1 << 20));
        for (const auto& f : watched) CHECK(fileDigest(f) == hashes[f]);
        for (const char* p : {"/etc/evil", "/evil", "/etc/out/evil"}) CHECK_FALSE(pathExists(p));
        CHECK_FALSE(pathExists(d.stateDir() + "/evil"));
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/evil"));
        // The agent's socket was not replaced: the sandbox still answers.
        CHECK(sh(d.http, id, "echo alive") == "alive\n");
    }

    TEST_CASE("warm pool: primed, drained, refilled; a pooled sandbox is a normal sandbox") {
        DaemonFixture d({}, {"--warm-pool-target", "2", "--warm-pool-refresh-interval", "100"});
        auto stats = [&] { return json::parse(call(d.http, "GET", "/v1/pool/stats").raw); };
        REQUIRE(waitFor([&] { return stats()["warm"] == 2; }, 30s));
        auto s = stats();
        CHECK(s["config"]["warmTarget"] == 2);
        CHECK(s["config"]["refreshInterval"] == 100);
        CHECK(s["assigned"] == 0);
        CHECK(s["total"] == 2);
        // Drain it: three sandboxes, each a working, separate one.
        std::vector<std::string> ids;
        for (int i = 0; i < 3; ++i) {
            ids.push_back(newSandbox(d.http));
            auto put =
                call(d.http, "PUT", sandboxPath(ids.back(), "/file/workspace/me"), ids.back());
            INFO(put.raw);
            REQUIRE(put.status == 200);
        }
        for (const auto& id : ids) {
            CHECK(sh(d.http, id, "cat /workspace/me; ls /workspace | wc -l") == id + "1\n");
            CHECK(pathExists(d.workspace(id) + "/me"));
        }
        // Refilled behind them.
        CHECK(waitFor([&] { return stats()["warm"] == 2 && stats()["assigned"] == 3; }, 30s));
        // A destroyed pooled sandbox goes like any other.
        CHECK(call(d.http, "DELETE", sandboxPath(ids[0])).status == 204);
        CHECK_FALSE(pathExists(d.stateDir() + "/sandboxes/" + ids[0]));
        // shutdown-prewarmed stops the warm ones; the refresh loop brings the target back.
        auto r = call(d.http, "POST", "/v1/pool/shutdown-prewarmed");
        CHECK(r.raw == R"({"ok":true})");
        CHECK(stats()["warm"] == 0);
        CHECK(waitFor([&] { return stats()["warm"] == 2; }, 30s));
        CHECK(call(d.http, "POST", "/v1/pool/prime").raw == R"({"ok":true})");
        checkNotFoundText(call(d.http, "GET", "/v1/pool/prime"));
        checkNotFoundText(call(d.http, "GET", "/v1/pool/other"));
    }

    TEST_CASE("OpenAPI: the reference document plus marked additions; a readable page") {
        // Re-serialised compactly in key order, the reference document is the reference's
        // exact bytes (its SHA-256 is in the spec): the serialisation sandboxd uses.
        auto ref = nlohmann::ordered_json::parse(readFile(SANDBOX_OPENAPI_JSON));
        CHECK(sha256Hex(ref.dump()) ==
              "72636aa81b625ba72c81bc02d2647ec5b2d5df101a8f2b3ad5a5659ddaff2073");
        DaemonFixture d("secret");
        auto r = call(d.http, "GET", "/v1/openapi.json?token=secret");
        REQUIRE(r.status == 200);
        auto doc = nlohmann::ordered_json::parse(r.raw);
        // Every reference path and schema is there, unchanged.
        for (const auto& [path, item] : ref["paths"].items()) CHECK(doc["paths"][path] == item);
        for (const auto& [name, schema] : ref["components"]["schemas"].items())
            if (name != "ErrorResponse") CHECK(doc["components"]["schemas"][name] == schema);
        CHECK(doc["paths"]["/v1/sandbox/{id}/agent/{route}"]["x-sandboxd"]["extension"] == true);
        CHECK(doc.contains("x-sandboxd"));
        // Compact, as the reference sends it.
        CHECK(r.raw == doc.dump());
        // Auth: header (case-sensitive prefix) or ?token=.
        CHECK(call(d.http, "GET", "/v1/openapi.json").status == 401);
        CHECK(call(d.http, "GET", "/v1/openapi.json", {}, {{"Authorization", "bearer secret"}})
                  .status == 401);
        CHECK(call(d.http, "GET", "/v1/openapi.json?token=wrong").status == 401);
        auto page = call(d.http, "GET", "/v1/openapi?token=secret");
        CHECK(page.status == 200);
        CHECK(page.contentType == "text/html; charset=utf-8");
        CHECK(page.raw.rfind("<!doctype html>", 0) == 0);
        CHECK(page.raw.find("/v1/sandbox/{id}/agent/{route}") != std::string::npos);
        CHECK(page.raw.find("ptyTerminal") != std::string::npos);
        // Self-contained: nothing is fetched.
        CHECK(page.raw.find("<script") == std::string::npos);
        CHECK(page.raw.find("http://") == std::string::npos);
        CHECK(page.raw.find("<link") == std::string::npos);
        CHECK(page.raw.find("src=") == std::string::npos);
    }

    TEST_CASE("authentication on every route") {
        DaemonFixture d("secret");
        const std::string id = "authcheck";
        const std::vector<std::pair<std::string, std::string>> sandboxRoutes = {
            {"POST", "/v1/sandbox"},
            {"DELETE", sandboxPath(id)},
            {"GET", sandboxPath(id, "/running")},
            {"POST", sandboxPath(id, "/exec")},
            {"GET", sandboxPath(id, "/file/workspace/x")},
            {"PUT", sandboxPath(id, "/file/workspace/x")},
            {"POST", sandboxPath(id, "/persist")},
            {"POST", sandboxPath(id, "/hydrate")},
            {"POST", sandboxPath(id, "/mount")},
            {"POST", sandboxPath(id, "/unmount")},
            {"POST", sandboxPath(id, "/session")},
            {"DELETE", sandboxPath(id, "/session/s")},
            {"POST", sandboxPath(id, "/tunnel/8080")},
            {"DELETE", sandboxPath(id, "/tunnel/8080")},
            {"GET", sandboxPath(id, "/tunnel")},
            {"GET", sandboxPath(id, "/port")},
            {"POST", sandboxPath(id, "/port/8080")},
            {"DELETE", sandboxPath(id, "/port/8080")},
            {"GET", sandboxPath(id, "/port/8080")},
            {"POST", sandboxPath(id, "/port/8080/validate")},
            {"GET", sandboxPath(id, "/pty")},
            {"POST", sandboxPath(id, "/agent/api/execute")},
        };
        const std::vector<std::pair<std::string, std::string>> strictRoutes = {
            {"GET", "/v1/pool/stats"},
            {"POST", "/v1/pool/prime"},
            {"POST", "/v1/pool/shutdown-prewarmed"},
            {"GET", "/v1/openapi.json"},
            {"GET", "/v1/openapi"},
            {"GET", "/v1/openapi.html"}};
        for (const auto& routes : {sandboxRoutes, strictRoutes})
            for (const auto& [method, path] : routes) {
                CAPTURE(method + " " + path);
                for (const client::HeaderList& h :
                     {client::HeaderList{}, client::HeaderList{{"Authorization", "Bearer wrong"}},
                      client::HeaderList{{"Authorization", "Basic secret"}}})
                    checkBridgeError(call(d.http, method, path, "{}", h), 401, "unauthorized",
                                     "Unauthorized");
            }
        // The right key passes; the prefix is case-insensitive on sandbox routes only (§3).
        CHECK(call(d.http, "GET", sandboxPath(id, "/running"), {},
                   {{"Authorization", "BEARER secret"}})
                  .status == 200);
        for (const auto& [method, path] : strictRoutes) {
            CAPTURE(path);
            CHECK(call(d.http, method, path, {}, {{"Authorization", "bearer secret"}}).status ==
                  401);
            CHECK(call(d.http, method, path, {}, {{"Authorization", "Bearer secret"}}).status ==
                  200);
        }
        CHECK(call(d.http, "GET", "/health").status == 200);
        // No sandbox was started by a refused request (only the one that passed).
        CHECK(agentPids(d.pid()).size() == 1);
    }
}
