// The bridge conformance checklist (bridge-api §13), row by row, against a real sandboxd.
// The reference's rows are unit tests with a mocked SDK; here each row is asserted through its
// observable effect (the command's output, the file on disk, the archive's members). Where
// sandboxd deliberately answers differently (mounts only where s3fs can reach the bucket, no
// public tunnels, a real tar instead of a mock), the row asserts sandboxd's documented answer
// (docs/compatibility.md). Not here: the PTY rows (§13.7, S9, S10: the pty route's own tests),
// tracing (§13.12, not wire-visible), rows that need a failure the real back end cannot produce
// (R7, W6, U2), and the pool's Durable-Object internals (§13.15 rows about learned ceilings and
// batches).
#include <regex>

#include "daemon/daemon_test_util.hpp"
#include "daemon/tar_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;

namespace {

const std::string kId = "test";

Reply post(DaemonFixture& d, const std::string& sub, std::string_view body,
           const client::HeaderList& h = {}) {
    return call(d.http, "POST", sandboxPath(kId, sub), body, h);
}

// An exec whose stream must be well formed; returns it.
ExecResult ok(DaemonFixture& d, const std::vector<std::string>& argv, json extra = json::object(),
              const client::HeaderList& h = {}) {
    extra["argv"] = argv;
    auto r = exec(d.http, kId, extra, h);
    INFO(r.describe());
    CHECK(r.wellFormed());
    return r;
}

}  // namespace

TEST_SUITE("daemon.conformance") {
    TEST_CASE("13.1 destroy") {
        DaemonFixture d;
        // D1, D3: 204, empty body; the sandbox's processes end and its assignment goes.
        ok(d, {"true"});
        CHECK(json::parse(call(d.http, "GET", "/v1/pool/stats").raw)["assigned"] == 1);
        auto r = call(d.http, "DELETE", sandboxPath(kId));
        CHECK(r.status == 204);
        CHECK(r.raw.empty());
        CHECK(waitFor([&] { return sandboxProcesses(d.pid(), kId).empty(); }));
        CHECK(json::parse(call(d.http, "GET", "/v1/pool/stats").raw)["assigned"] == 0);
        // D2: the sandbox's agent already dead: still 204.
        ok(d, {"true"});
        for (pid_t p : agentPids(d.pid())) ::kill(p, SIGKILL);
        CHECK(call(d.http, "DELETE", sandboxPath(kId)).status == 204);
        // D4: an id that has no sandbox: 204, and none is started for it.
        CHECK(call(d.http, "DELETE", sandboxPath("neverused")).status == 204);
        CHECK(agentPids(d.pid()).empty());
        // D6
        CHECK(call(d.http, "DELETE", sandboxPath("INVALID")).status == 400);
        // D5
        DaemonFixture k("secret");
        checkBridgeError(call(k.http, "DELETE", sandboxPath(kId)), 401, "unauthorized",
                         "Unauthorized");
    }

    TEST_CASE("13.2 exec") {
        DaemonFixture d;
        SUBCASE("E1-E3, E6: events, exactly") {
            auto r = ok(d, {"echo", "hello world"});
            CHECK(r.contentType == "text/event-stream");
            CHECK(r.names() == std::vector<std::string>{"stdout", "exit"});
            CHECK(r.events[0].data == sandbox::core::base64Encode("hello world\n"));
            CHECK(r.events[1].data == R"({"exit_code":0})");
            r = ok(d, {"sh", "-c", "printf 'oh no' >&2; exit 1"});
            CHECK(r.names() == std::vector<std::string>{"stderr", "exit"});
            CHECK(r.err == "oh no");
            CHECK(r.events[1].data == R"({"exit_code":1})");
            r = ok(d, {"exit", "42"});
            CHECK(r.names() == std::vector<std::string>{"exit"});
            CHECK(r.events[0].data == R"({"exit_code":42})");
            // Output the command writes in three separate steps arrives as three events.
            r = ok(d, {"sh", "-c",
                       "printf line1; sleep 0.2; printf warn1 >&2; sleep 0.2; printf line2"});
            CHECK(r.names() == std::vector<std::string>{"stdout", "stderr", "stdout", "exit"});
            CHECK(r.out == "line1line2");
            CHECK(r.err == "warn1");
        }
        SUBCASE("E4: the back end reports an error: one error event, exec_error") {
            auto r = ok(d, {"ls"}, {{"cwd", "/workspace/no-such-dir"}});
            CHECK(r.names() == std::vector<std::string>{"error"});
            CHECK(r.error["code"] == "exec_error");
            CHECK(r.error["error"].get<std::string>().find("no-such-dir") != std::string::npos);
        }
        SUBCASE("E5: the back end is lost mid-call: 200, one error event, exec_transport_error") {
            bool killed = false;
            auto r = exec(d.http, kId, {{"argv", {"sh", "-c", "echo started; sleep 30"}}}, {},
                          [&](const Event& e, const ExecResult&) {
                              if (e.name == "stdout" && !killed)
                                  for (pid_t p : agentPids(d.pid())) killed = !::kill(p, SIGKILL);
                              return true;
                          });
            CHECK(killed);
            CHECK(r.status == 200);
            CHECK(r.terminals == 1);
            CHECK(r.events.back().name == "error");
            CHECK(r.error["code"] == "exec_transport_error");
        }
        SUBCASE("E7-E11, E14, E15: validation") {
            checkBridgeError(post(d, "/exec", "not json"), 400, "invalid_request",
                             "Invalid JSON body");
            checkBridgeError(post(d, "/exec", R"({"argv":[]})"), 400, "invalid_request",
                             "argv must be a non-empty array");
            checkBridgeError(post(d, "/exec", "{}"), 400, "invalid_request",
                             "argv must be a non-empty array");
            for (const char* cwd : {"/tmp", "/workspace/../../etc"})
                checkBridgeError(post(d, "/exec", json{{"argv", {"ls"}}, {"cwd", cwd}}.dump()), 403,
                                 "invalid_request",
                                 "cwd must resolve to a location within /workspace");
        }
        SUBCASE("E12, E13, E16: cwd") {
            CHECK(ok(d, {"pwd"}).out == "/workspace\n");
            ok(d, {"mkdir", "-p", "/workspace/src"});
            CHECK(ok(d, {"pwd"}, {{"cwd", "/workspace/src"}}).out == "/workspace/src\n");
            CHECK(ok(d, {"pwd"}, {{"cwd", "src"}}).out == "/workspace/src\n");
        }
        SUBCASE("E17-E29: argv quoting, through what bash then runs") {
            CHECK(ok(d, {"echo", "hello"}).out == "hello\n");
            CHECK(ok(d, {"echo", "hello world"}).out == "hello world\n");
            CHECK(ok(d, {"echo", "it's"}).out == "it's\n");
            CHECK(ok(d, {"echo", "say \"hi\""}).out == "say \"hi\"\n");
            CHECK(ok(d, {"printf", "line1\nline2"}).out == "line1\nline2");
            CHECK(ok(d, {"printf", "a\rb"}).out == "a\rb");
            CHECK(ok(d, {"printf", "a\tb"}).out == "a\tb");
            CHECK(ok(d, {"echo", "a\\b"}).out == "a\\b\n");
            CHECK(ok(d, {"echo", "$dollar"}).out == "$dollar\n");
            CHECK(ok(d, {"echo", "a;b", "c|d", "e&f"}).out == "a;b c|d e&f\n");
            CHECK(ok(d, {"echo", "`whoami`", "$(id)"}).out == "`whoami` $(id)\n");
            CHECK(ok(d, {"env", "A=1", "B=two", "printenv", "A"}).out == "1\n");
            CHECK(ok(d, {"sh", "-c", "printf argv-ok; printf ' [%s]' \"$0\" \"$@\"", "argv-test",
                         "space value", "$dollar", "quote'\"value", "line\nbreak"})
                      .out ==
                  "argv-ok [argv-test] [space value] [$dollar] [quote'\"value] "
                  "[line\nbreak]");
        }
    }

    TEST_CASE("13.3 hydrate") {
        DaemonFixture d;
        std::string tar = makeTar({{.name = "hello.txt", .data = "hi"}});
        // H1, H5: a tar is extracted into /workspace, and nothing is left in /tmp.
        auto r = post(d, "/hydrate", tar, {{"content-type", "application/octet-stream"}});
        CHECK(r.status == 200);
        CHECK(r.raw == R"({"ok":true})");
        CHECK(sh(d.http, kId, "cat /workspace/hello.txt; ls -A /tmp") == "hi");
        // H1 with the reference test's body (1024 x 'A', which its mock accepted): not a tar.
        r = post(d, "/hydrate", std::string(1024, 'A'));
        CHECK(r.status == 502);
        CHECK(r.body["code"] == "workspace_archive_write_error");
        CHECK(r.body["error"].get<std::string>().rfind("tar extract failed: ", 0) == 0);
        // H2: ?root= is ignored.
        r = post(d, "/hydrate?root=/etc", makeTar({{.name = "rooted.txt", .data = "x"}}));
        CHECK(r.status == 200);
        CHECK(sh(d.http, kId, "ls /workspace/rooted.txt; test ! -e /etc/rooted.txt && echo no") ==
              "/workspace/rooted.txt\nno\n");
        // H3, H4
        checkBridgeError(post(d, "/hydrate", ""), 400, "invalid_request", "Empty tar payload");
        checkBridgeError(post(d, "/hydrate", std::string((32u << 20) + 1, '\0')), 400,
                         "invalid_request",
                         "tar payload too large: 33554433 bytes exceeds the 33554432-byte limit");
    }

    TEST_CASE("13.4 middleware") {
        {
            DaemonFixture k("secret");
            auto running = [&](const client::HeaderList& h) {
                return call(k.http, "GET", sandboxPath(kId, "/running"), {}, h);
            };
            CHECK(running({{"Authorization", "Bearer secret"}}).status == 200);  // MW-1
            checkBridgeError(running({{"Authorization", "Bearer wrong"}}), 401, "unauthorized",
                             "Unauthorized");                                    // MW-2
            checkBridgeError(running({}), 401, "unauthorized", "Unauthorized");  // MW-3
            // MW-13, MW-14 (the reference: 401)
            CHECK(call(k.http, "GET", "/v1/openapi.json", {}, {{"Authorization", "Bearer secret"}})
                      .status == 200);
            checkBridgeError(
                call(k.http, "GET", "/v1/openapi.json", {}, {{"Authorization", "Bearer wrong"}}),
                401, "unauthorized", "Unauthorized");
        }
        DaemonFixture d;
        CHECK(call(d.http, "GET", sandboxPath(kId, "/running")).status == 200);  // MW-4
        CHECK(call(d.http, "GET", sandboxPath("mfrggzdfmy2tqnrz", "/running")).raw ==
              R"({"running":true})");  // MW-5
        for (const std::string& id :
             std::vector<std::string>{"ABCDEF", "my-sandbox_01", "abc0189", "foo;rm%20-rf%20%2F",
                                      "..%2Fetc", std::string(129, 'a')})  // MW-6..MW-11
            checkBridgeError(call(d.http, "GET", sandboxPath(id, "/running")), 400,
                             "invalid_request", "Invalid sandbox ID format");
        CHECK(call(d.http, "GET", sandboxPath(std::string(128, 'a'), "/running")).status ==
              200);                                                       // MW-12
        CHECK(call(d.http, "GET", "/v1/openapi.json").status == 200);     // MW-15
        checkNotFoundText(call(d.http, "GET", "/sandbox/test/running"));  // MW-16
        CHECK(call(d.http, "GET", "/health").body["ok"] == true);         // MW-17
    }

    TEST_CASE("13.5 mount: validation exactly; these valid bodies cannot mount here: mount_error") {
        DaemonFixture d;
        const json remote = {{"bucket", "my-bucket"},
                             {"mountPath", "/mnt/data"},
                             {"options", {{"endpoint", "https://acct.r2.cloudflarestorage.com"}}}};
        auto with = [&](json body, const json& options) {
            for (auto& [k, v] : options.items()) body["options"][k] = v;
            return body;
        };
        const json binding = {{"binding", "MY_BUCKET"},
                              {"mountPath", "/mnt/data"},
                              {"options", {{"readOnly", true}, {"prefix", "/uploads/"}}}};
        // MT1-MT7, MT9, MT10, MT23: valid; this machine cannot mount (the reason is said).
        for (const json& body :
             {remote,
              with(remote, {{"credentials", {{"accessKeyId", "AKID"}, {"secretAccessKey", "S"}}}}),
              with(remote, {{"endpoint", "https://s3.us-west-2.amazonaws.com"}}),
              with(remote, {{"prefix", "/uploads/"}}), with(remote, {{"readOnly", true}}), binding,
              with(binding, {{"s3fsOptions", {"nomultipart", "nomixupload"}}}),
              with(remote, {{"s3fsOptions", {"nomultipart"}}})}) {
            CAPTURE(body.dump());
            auto r = post(d, "/mount", body.dump());
            CHECK(r.status == 502);
            CHECK(r.body["code"] == "mount_error");
            std::string e = r.body["error"];
            CHECK(e.rfind("mount failed: ", 0) == 0);
            // Why, which depends on the machine: no s3fs or FUSE here, no credentials, the
            // endpoint unreachable (no network), an R2 binding (Workers only).
            CHECK(e.size() > std::string("mount failed: ").size() + 10);
        }
        // The SDK's own checks: a prefix without '/' (the public docs' example) is refused.
        auto r = post(d, "/mount", with(remote, {{"prefix", "subdir/"}}).dump());
        CHECK(r.status == 502);
        CHECK(r.body["error"].get<std::string>().find("Prefix must start with '/'") !=
              std::string::npos);
        auto bad = [&](const json& body, const std::string& contains) {
            auto b = post(d, "/mount", body.dump());
            CAPTURE(body.dump());
            CHECK(b.status == 400);
            CHECK(b.body["code"] == "invalid_request");
            CHECK(b.body["error"].get<std::string>().find(contains) != std::string::npos);
        };
        bad(with(binding, {{"endpoint", "https://x"}}), "either binding or options.endpoint");
        bad({{"mountPath", "/mnt/data"}, {"options", json::object()}}, "binding");  // MT11
        json noPath = remote;
        noPath.erase("mountPath");
        bad(noPath, "mountPath");  // MT12
        json rel = remote;
        rel["mountPath"] = "mnt/data";
        bad(rel, "absolute path");  // MT13
        json noOpts = remote;
        noOpts.erase("options");
        bad(noOpts, "options");  // MT14
        json arr = remote;
        arr["options"] = json::array();
        bad(arr, "options");                                                             // MT15
        bad(with(remote, {{"endpoint", 123}}), "endpoint");                              // MT16
        bad(with(remote, {{"s3fsOptions", "nomultipart"}}), "s3fsOptions");              // MT17
        bad(with(remote, {{"s3fsOptions", {"nomultipart", 123}}}), "s3fsOptions");       // MT18
        bad(with(remote, {{"readOnly", "true"}}), "readOnly");                           // MT19
        bad(with(remote, {{"prefix", 123}}), "prefix");                                  // MT20
        bad(with(remote, {{"credentials", {{"accessKeyId", "AKID"}}}}), "credentials");  // MT21
        checkBridgeError(post(d, "/mount", "not json"), 400, "invalid_request",
                         "Invalid JSON body");  // MT22
        // §2.6: a JSON null body crashes the reference's handler: 500 text.
        auto n = post(d, "/mount", "null");
        CHECK(n.status == 500);
        CHECK(n.raw == "Internal Server Error");
    }

    TEST_CASE("13.6 persist") {
        DaemonFixture d;
        sh(d.http, kId,
           "mkdir -p /workspace/__pycache__ /workspace/.venv/bin /workspace/src/__pycache__ && "
           "echo a > /workspace/src/a.py && echo c > /workspace/__pycache__/c.pyc && "
           "echo v > /workspace/.venv/bin/py && echo n > /workspace/src/__pycache__/n.pyc");
        auto members = [&](const std::string& query) {
            auto r = post(d, "/persist" + query, "");
            CHECK(r.status == 200);
            CHECK(r.contentType == "application/octet-stream");
            auto m = readTar(r.raw);
            REQUIRE(m);
            return *m;
        };
        // P1, P6: the whole workspace, members relative to "./".
        auto all = members("");
        CHECK(all.count("./"));
        CHECK(all["./src/a.py"].data == "a\n");
        CHECK(all.count("./.venv/bin/py"));
        for (const auto& [name, m] : all) CHECK(name.rfind("./", 0) == 0);
        // P2: `--exclude ./ITEM` semantics: the top-level entries (and what is under them) go;
        // a nested directory of the same name stays.
        auto some = members("?excludes=__pycache__,.venv");
        CHECK_FALSE(some.count("./__pycache__/"));
        CHECK_FALSE(some.count("./__pycache__/c.pyc"));
        CHECK_FALSE(some.count("./.venv/bin/py"));
        CHECK(some.count("./src/a.py"));
        CHECK(some.count("./src/__pycache__/n.pyc"));
        // P3
        checkBridgeError(post(d, "/persist?excludes=../../etc", ""), 400, "invalid_request",
                         "exclude paths must not contain \"..\"");
        // P4: shell metacharacters are data: nothing runs, the archive is whole.
        auto meta = members("?excludes=foo%3Brm%20-rf%20%2F");
        CHECK(meta.count("./src/a.py"));
        CHECK(sh(d.http, kId, "cat /workspace/src/a.py") == "a\n");
        // P5: ?root= is ignored.
        auto rooted = members("?root=/etc");
        CHECK(rooted.count("./src/a.py"));
        CHECK_FALSE(rooted.count("./passwd"));
    }

    TEST_CASE("13.8 read and 13.16 write") {
        DaemonFixture d;
        auto put = [&](const std::string& path, std::string_view body) {
            return call(d.http, "PUT", sandboxPath(kId, "/file/" + path), body);
        };
        auto get = [&](const std::string& path) {
            return call(d.http, "GET", sandboxPath(kId, "/file/" + path));
        };
        CHECK(put("workspace/main.py", "file content").raw == R"({"ok":true})");  // W1
        auto r = get("workspace/main.py");                                        // R1
        CHECK(r.status == 200);
        CHECK(r.raw == "file content");
        for (const char* p :
             {"etc/passwd", "main.py", "root/.ssh/authorized_keys"}) {  // R3 R4 W3 W4
            checkBridgeError(get(p), 403, "invalid_request",
                             "path must resolve to a location within /workspace");
            checkBridgeError(put(p, "x"), 403, "invalid_request",
                             "path must resolve to a location within /workspace");
        }
        // R2, W2: a `..` the client did not collapse (a raw request) still resolves outside.
        checkBridgeError(get("workspace/../etc/passwd"), 403, "invalid_request",
                         "path must resolve to a location within /workspace");
        checkBridgeError(put("workspace/../etc/shadow", "x"), 403, "invalid_request",
                         "path must resolve to a location within /workspace");
        checkBridgeError(get(""), 400, "invalid_request", "file path must not be empty");  // R5
        checkBridgeError(put("", "hello"), 400, "invalid_request",
                         "file path must not be empty");  // W5
        checkBridgeError(get("workspace/missing.txt"), 404, "workspace_read_not_found",
                         "File not found: /workspace/missing.txt");  // R6
        std::string bin("binary\0data", 11);                         // R8, W7
        CHECK(put("workspace/image.png", bin).status == 200);
        r = get("workspace/image.png");
        CHECK(r.contentType == "application/octet-stream");
        CHECK(r.raw == bin);
        std::string png("\x89PNG\r\n\x1a\n", 8);
        CHECK(put("workspace/image.png", png).status == 200);
        CHECK(get("workspace/image.png").raw == png);
        checkBridgeError(
            put("workspace/huge.bin", std::string((32u << 20) + 1, '\0')), 413, "payload_too_large",
            "payload too large: 33554433 bytes exceeds the 33554432-byte limit");  // W8
        for (int n : {100000, 20000}) {                                            // W9, W10
            std::string data(static_cast<size_t>(n), '\0');
            for (int i = 0; i < n; ++i) data[static_cast<size_t>(i)] = static_cast<char>(i % 256);
            CHECK(put("workspace/large.bin", data).status == 200);
            CHECK(get("workspace/large.bin").raw == data);
        }
    }

    TEST_CASE("13.9 resolveWorkspacePath, through exec's cwd") {
        DaemonFixture d;
        sh(d.http, kId,
           "mkdir -p /workspace/foo.txt /workspace/b /workspace/foo/bar "
           "/workspace/a/b/c/d");
        const std::vector<std::pair<std::string, std::string>> accepted = {
            {"/workspace/foo.txt", "/workspace/foo.txt"},
            {"foo.txt", "/workspace/foo.txt"},
            {"/workspace/a/../b", "/workspace/b"},
            {"/workspace", "/workspace"},
            {"/workspace/./foo/./bar", "/workspace/foo/bar"},
            {".", "/workspace"},
            {"a/b/c/d", "/workspace/a/b/c/d"}};  // RP1-RP7
        for (const auto& [in, out] : accepted) {
            CAPTURE(in);
            CHECK(ok(d, {"pwd"}, {{"cwd", in}}).out == out + "\n");
        }
        for (const char* in : {"/workspace/../etc/passwd", "/workspace/a/b/../../../../etc/shadow",
                               "/etc/passwd", "../../etc/passwd", "/", "/workspacefoo/bar", "/tmp",
                               "/root/.ssh/authorized_keys"}) {  // RP8-RP15
            CAPTURE(in);
            checkBridgeError(post(d, "/exec", json{{"argv", {"pwd"}}, {"cwd", in}}.dump()), 403,
                             "invalid_request", "cwd must resolve to a location within /workspace");
        }
    }

    TEST_CASE("13.10 sessions") {
        DaemonFixture d;
        // S1
        auto r = post(d, "/session", R"({"id":"my-sess"})");
        CHECK(r.status == 200);
        CHECK(r.raw == R"({"id":"my-sess"})");
        // S2: creation fails (the id exists): 502 session_error with the back end's message.
        r = post(d, "/session", R"({"id":"my-sess"})");
        CHECK(r.status == 502);
        CHECK(r.body["code"] == "session_error");
        CHECK(r.body["error"] == "session create failed: Session 'my-sess' already exists");
        // No id: session-<epoch ms>.
        r = post(d, "/session", "");
        CHECK(r.status == 200);
        CHECK(std::regex_match(r.body["id"].get<std::string>(), std::regex("session-[0-9]{13}")));
        // S3: 200 with {success, sessionId, timestamp}, in that order.
        CHECK(post(d, "/session", R"({"id":"sess-1"})").status == 200);
        r = call(d.http, "DELETE", sandboxPath(kId, "/session/sess-1"));
        CHECK(r.status == 200);
        CHECK(std::regex_match(
            r.raw,
            std::regex(R"(\{"success":true,"sessionId":"sess-1","timestamp":"[0-9T:.Z-]+"\})")));
        // S4
        r = call(d.http, "DELETE", sandboxPath(kId, "/session/bad-id"));
        CHECK(r.status == 502);
        CHECK(r.body["code"] == "session_error");
        CHECK(r.body["error"].get<std::string>().find("not found") != std::string::npos);
        // S5, S6: the session's env and cwd apply with Session-Id, not without.
        CHECK(post(d, "/session",
                   json{{"id", "my-session"}, {"cwd", "/tmp"}, {"env", {{"FOO", "bar"}}}}.dump())
                  .status == 200);
        auto in = ok(d, {"sh", "-c", "echo \"$FOO $PWD\""}, json::object(),
                     {{"Session-Id", "my-session"}});
        CHECK(in.out == "bar /tmp\n");
        CHECK(ok(d, {"sh", "-c", "echo \"[$FOO] $PWD\""}).out == "[] /workspace\n");
        // S7, S8: the file routes run in the named session (it exists afterwards).
        CHECK(call(d.http, "PUT", sandboxPath(kId, "/file/workspace/test.txt"), "hello",
                   {{"Session-Id", "file-sess"}})
                  .status == 200);
        CHECK(call(d.http, "GET", sandboxPath(kId, "/file/workspace/test.txt"), {},
                   {{"Session-Id", "read-sess"}})
                  .raw == "hello");
        for (const char* s : {"file-sess", "read-sess"})
            CHECK(post(d, "/session", json{{"id", s}}.dump()).body["error"] ==
                  "session create failed: Session '" + std::string(s) + "' already exists");
        // S11-S13
        for (const char* bad : {"../etc/passwd", "bad/session", "session id"})
            checkBridgeError(post(d, "/exec", R"({"argv":["echo","hi"]})", {{"Session-Id", bad}}),
                             400, "invalid_request", "Invalid session ID format");
        // §2.6: JSON null crashes the reference's handler.
        CHECK(post(d, "/session", "null").status == 500);
    }

    TEST_CASE("13.13 tunnel: validation exactly; a tunnel is a host listener") {
        DaemonFixture d;
        // T1, T2, T6: the reference's TunnelInfo, idempotent per port; other options for the
        // same port are the reference's error, as 502 tunnel_error.
        auto r = post(d, "/tunnel/8080", "");
        REQUIRE(r.status == 200);
        for (const char* key : {"id", "port", "url", "hostname", "createdAt"})
            CHECK(r.body.contains(key));
        CHECK(r.body["port"] == 8080);
        CHECK(post(d, "/tunnel/8080", "").raw == r.raw);
        auto named = post(d, "/tunnel/8080", R"({"name":"app"})");
        CHECK(named.status == 502);
        CHECK(named.body.size() == 2);
        CHECK(named.body["code"] == "tunnel_error");
        CHECK(named.body["error"].get<std::string>().rfind("tunnel failed: ", 0) == 0);
        checkBridgeError(post(d, "/tunnel/8080", R"({"name":123})"), 400, "invalid_request",
                         "name must be a string when provided");       // T3
        auto bad = post(d, "/tunnel/8080", R"({"name":"Bad.Name"})");  // T4
        CHECK(bad.status == 400);
        CHECK(bad.body["error"].get<std::string>().find("valid DNS label") != std::string::npos);
        checkBridgeError(post(d, "/tunnel/3000", ""), 400, "invalid_request",
                         "Invalid port");                                               // T5
        CHECK(call(d.http, "DELETE", sandboxPath(kId, "/tunnel/8080")).status == 204);  // T7
        CHECK(call(d.http, "DELETE", sandboxPath(kId, "/tunnel/8080")).status == 204);
        checkBridgeError(call(d.http, "DELETE", sandboxPath(kId, "/tunnel/3000")), 400,
                         "invalid_request", "Invalid port");  // T8
        // §4.6: JavaScript Number() forms of the port ("0x1F90" is 8080, "1e4" 10000).
        for (const char* p : {"0x1F90", "1e4", "8080.0"}) {
            auto t = post(d, std::string("/tunnel/") + p, "");
            CHECK(t.status == 200);
        }
        CHECK(post(d, "/tunnel/1e4", "").body["port"] == 10000);
        for (const char* p : {"80", "abc", "8080.5", "70000"})
            CHECK(post(d, std::string("/tunnel/") + p, "").status == 400);
    }

    TEST_CASE("13.14 unmount") {
        DaemonFixture d;
        auto u = [&](std::string_view body) { return post(d, "/unmount", body); };
        // U1, U7, U8, U10: nothing can be mounted here, so there is never a mount to remove;
        // the path in the message is the normalised one.
        for (auto [in, norm] : std::vector<std::pair<std::string, std::string>>{
                 {"/mnt/data", "/mnt/data"},
                 {"/workspace", "/workspace"},
                 {"/mnt/data/../buckets/store", "/mnt/buckets/store"}})
            checkBridgeError(u(json{{"mountPath", in}}.dump()), 502, "unmount_error",
                             "unmount failed: No active mount found for path: " + norm);
        auto r = u("{}");  // U3
        CHECK(r.status == 400);
        CHECK(r.body["error"].get<std::string>().find("mountPath") != std::string::npos);
        r = u(R"({"mountPath":"mnt/data"})");  // U4
        CHECK(r.body["error"].get<std::string>().find("absolute path") != std::string::npos);
        for (const char* root : {R"({"mountPath":"/"})", R"({"mountPath":"/mnt/data/../.."})"})
            checkBridgeError(u(root), 400, "invalid_request",
                             "mountPath must not resolve to / (filesystem root)");     // U5, U6
        checkBridgeError(u("not json"), 400, "invalid_request", "Invalid JSON body");  // U9
    }

    TEST_CASE("13.15 warm pool (the rows a local pool can show)") {
        {  // WP1, WP30: target 0, nothing known
            DaemonFixture d;
            auto s = json::parse(call(d.http, "GET", "/v1/pool/stats").raw);
            CHECK(s["warm"] == 0);
            CHECK(s["config"]["warmTarget"] == 0);
            CHECK(s["maxInstances"].is_null());
        }
        ::setenv("WARM_POOL_MAX_INSTANCES", "2", 1);
        DaemonFixture d;
        ::unsetenv("WARM_POOL_MAX_INSTANCES");
        auto stats = [&] { return json::parse(call(d.http, "GET", "/v1/pool/stats").raw); };
        CHECK(stats()["maxInstances"] == 2);  // WP31
        ok(d, {"true"});                      // WP13
        CHECK(exec(d.http, "second", json{{"argv", {"true"}}}).exitCode == 0);
        // WP15, WP36: the third sandbox exceeds the ceiling: 503 with the reference's message.
        checkBridgeError(call(d.http, "GET", sandboxPath("third", "/running")), 503,
                         "capacity_exceeded",
                         "Cannot start container: instance limit reached (2/2). All container "
                         "slots are in use. Wait for existing containers to stop.");
        // WP14: an assigned sandbox is still served; WP27: after one stops, there is room.
        CHECK(ok(d, {"true"}).exitCode == 0);
        CHECK(call(d.http, "DELETE", sandboxPath("second")).status == 204);
        CHECK(call(d.http, "GET", sandboxPath("third", "/running")).status == 200);
    }

    TEST_CASE("13.17 black-box checks: OpenAPI") {
        DaemonFixture d;
        auto r = call(d.http, "GET", "/v1/openapi.json");
        CHECK(r.status == 200);
        CHECK(r.contentType == "application/json");
        REQUIRE(r.body.is_object());
        CHECK(r.body["openapi"] == "3.1.0");
        for (const char* p : {"/v1/sandbox/{id}/exec", "/v1/sandbox/{id}/pty",
                              "/v1/sandbox/{id}/file/{path}", "/v1/sandbox/{id}/running",
                              "/v1/sandbox/{id}/persist", "/v1/sandbox/{id}/hydrate", "/health"})
            CHECK(r.body["paths"].contains(p));
        const auto& pty = r.body["paths"]["/v1/sandbox/{id}/pty"]["get"];
        CHECK(pty["operationId"] == "ptyTerminal");
        std::set<std::string> params;
        for (const auto& p : pty["parameters"]) params.insert(p["name"]);
        for (const char* p : {"cols", "rows", "shell", "session", "id"}) CHECK(params.count(p));
        for (const char* s : {"101", "400", "502"}) CHECK(pty["responses"].contains(s));
        for (const char* page : {"/v1/openapi.html", "/v1/openapi"}) {
            auto h = call(d.http, "GET", page);
            CHECK(h.status == 200);
            CHECK(h.contentType.find("text/html") != std::string::npos);
            std::string lower = h.raw.substr(0, 64);
            for (auto& c : lower)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            CHECK(lower.find("<!doctype html") == 0);
        }
        // Other black-box rows not asserted above.
        CHECK(post(d, "/persist?excludes=../secret", "")
                  .body["error"]
                  .get<std::string>()
                  .find("..") != std::string::npos);
        CHECK(post(d, "/hydrate", "").body["error"] == "Empty tar payload");
        auto id = newSandbox(d.http);
        auto del = call(d.http, "DELETE", sandboxPath(id));
        CHECK(del.status == 204);
        CHECK(del.raw.empty());
    }
}
