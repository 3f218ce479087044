// sandboxd: POST /v1/sandbox/<id>/exec (spec §4.3–§4.5, §5.6, §6, §13.2).
#include "daemon/daemon_test_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;
using sandbox::SseEvent;
using sandbox::SseParser;

namespace {

std::string b64(std::string_view s) {
    return sandbox::core::base64Encode(s);
}

// The exact event list of a result, as "name:data" strings.
std::vector<std::string> sequence(const ExecResult& r) {
    std::vector<std::string> out;
    for (const auto& e : r.events) out.push_back(e.name + ":" + e.data);
    return out;
}

}  // namespace

TEST_SUITE("daemon.exec") {
    TEST_CASE("E1-E3, E6: exact event sequences") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);

        // E1
        auto e1 = run(d.http, id, {"echo", "hello world"});
        INFO(e1.describe());
        CHECK(e1.status == 200);
        CHECK(e1.contentType == "text/event-stream");
        CHECK(e1.cacheControl == "no-cache");
        CHECK(sequence(e1) == std::vector<std::string>{"stdout:" + b64("hello world\n"),
                                                       R"(exit:{"exit_code":0})"});
        // The framing is exactly "event: X\ndata: Y\n\n".
        CHECK(e1.raw == "event: stdout\ndata: " + b64("hello world\n") +
                            "\n\nevent: exit\ndata: {\"exit_code\":0}\n\n");

        // E2
        auto e2 = run(d.http, id, {"sh", "-c", "printf 'oh no' >&2; exit 1"});
        CHECK(sequence(e2) ==
              std::vector<std::string>{"stderr:" + b64("oh no"), R"(exit:{"exit_code":1})"});

        // E3: `exit` is a bash builtin, run as the command text `exit 42`.
        auto e3 = run(d.http, id, {"exit", "42"});
        CHECK(sequence(e3) == std::vector<std::string>{R"(exit:{"exit_code":42})"});

        // E6: stdout, stderr, stdout in that order (the command spaces its writes out, so they
        // arrive as separate chunks).
        auto e6 =
            run(d.http, id,
                {"sh", "-c", "printf line1; sleep 0.3; printf warn1 >&2; sleep 0.3; printf line2"});
        CHECK(sequence(e6) ==
              std::vector<std::string>{"stdout:" + b64("line1"), "stderr:" + b64("warn1"),
                                       "stdout:" + b64("line2"), R"(exit:{"exit_code":0})"});
    }

    TEST_CASE("E7-E9: bad bodies give 400 invalid_request") {
        DaemonFixture d;
        std::string id = "badbodies";
        auto check = [&](std::string_view body, const std::string& message) {
            CAPTURE(body);
            auto r = execRaw(d.http, id, body);
            CHECK(r.status == 400);
            CHECK(r.contentType == "application/json");
            CHECK(r.raw == errorBody(message, "invalid_request"));
        };
        check("not json", "Invalid JSON body");  // E7
        check("", "Invalid JSON body");
        check("{\"argv\":[\"echo\"]", "Invalid JSON body");
        check(R"({"argv":[]})", "argv must be a non-empty array");  // E8
        check(R"({})", "argv must be a non-empty array");           // E9
        check(R"({"argv":"echo hi"})", "argv must be a non-empty array");
        check(R"({"argv":null})", "argv must be a non-empty array");
        check(R"({"argv":{}})", "argv must be a non-empty array");
        // Non-string elements are rejected (§4.4 allows this choice).
        check(R"({"argv":["echo",1]})", "argv must be a non-empty array");
        check(R"({"argv":["echo",null]})", "argv must be a non-empty array");
        check(R"({"argv":[["echo"]]})", "argv must be a non-empty array");
        check(R"({"argv":[true]})", "argv must be a non-empty array");
        check(R"([])", "argv must be a non-empty array");
        check(R"("argv")", "argv must be a non-empty array");
        // JSON null crashes the reference (500); sandboxd answers it like any body without argv.
        check("null", "argv must be a non-empty array");
        // The argv check comes before the cwd check (§5.6 order).
        check(R"({"argv":[],"cwd":"/etc"})", "argv must be a non-empty array");
        // Content-Type is never checked.
        auto r = d.http.request("POST", sandboxPath(id, "/exec"), R"({"argv":["echo","typed"]})",
                                {{"Content-Type", "text/plain"}});
        CHECK(r.status == 200);
    }

    TEST_CASE("E10-E16: cwd resolution and containment") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        const std::string outside =
            errorBody("cwd must resolve to a location within /workspace", "invalid_request");
        for (const auto* cwd : {"/tmp", "/workspace/../../etc", "/etc", "/", "..", "../etc",
                                "/workspacefoo", "/WORKSPACE", "/workspace/a/../../x"}) {
            CAPTURE(cwd);
            auto r = exec(d.http, id, json{{"argv", {"ls"}}, {"cwd", cwd}});
            CHECK(r.status == 403);
            CHECK(r.contentType == "application/json");
            CHECK(r.raw == outside);
        }
        sh(d.http, id, "mkdir -p /workspace/src/deep");
        // E12: no cwd → /workspace.
        CHECK(run(d.http, id, {"pwd"}).out == "/workspace\n");
        // E13, E16: absolute and relative.
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", "/workspace/src"}}).out == "/workspace/src\n");
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", "src"}}).out == "/workspace/src\n");
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", "src/deep/.."}}).out == "/workspace/src\n");
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", "./src//deep/"}}).out == "/workspace/src/deep\n");
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", ""}}).out == "/workspace\n");
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", "/workspace"}}).out == "/workspace\n");
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", "/../workspace/src"}}).out == "/workspace/src\n");
        // A non-string cwd is ignored.
        CHECK(run(d.http, id, {"pwd"}, {{"cwd", 42}}).out == "/workspace\n");
        // A cwd that does not exist: reported inside the stream or as an error, never a hang.
        auto missing = run(d.http, id, {"pwd"}, {{"cwd", "/workspace/missing"}});
        INFO(missing.describe());
        if (missing.status == 200) {
            CHECK(missing.wellFormed());
            CHECK(missing.out != "/workspace/missing\n");
            CHECK_FALSE(missing.exitCode == 0);
        } else {
            CHECK(missing.status >= 400);
        }
    }

    TEST_CASE("E17-E29: argv quoting, checked through what the command receives") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        auto out = [&](const std::vector<std::string>& argv) {
            auto r = run(d.http, id, argv);
            INFO(r.describe());
            CHECK(r.wellFormed());
            CHECK(r.exitCode == 0);
            return r.out;
        };
        CHECK(out({"echo", "hello"}) == "hello\n");              // E17
        CHECK(out({"echo", "hello world"}) == "hello world\n");  // E18
        CHECK(out({"echo", "it's"}) == "it's\n");                // E19
        CHECK(out({"printf", "%s", "it's"}) == "it's");
        CHECK(out({"echo", "say \"hi\""}) == "say \"hi\"\n");      // E20
        CHECK(out({"printf", "line1\nline2"}) == "line1\nline2");  // E21
        CHECK(out({"printf", "%s", "line1\nline2"}) == "line1\nline2");
        CHECK(out({"printf", "a\rb"}) == "a\rb");  // E22
        CHECK(out({"printf", "a\tb"}) == "a\tb");  // E23
        CHECK(out({"echo", "a\\b"}) == "a\\b\n");  // E24
        CHECK(out({"printf", "%s", "a\\b"}) == "a\\b");
        CHECK(out({"echo", "$dollar"}) == "$dollar\n");                   // E25
        CHECK(out({"echo", "a;b", "c|d", "e&f"}) == "a;b c|d e&f\n");     // E26
        CHECK(out({"echo", "`whoami`", "$(id)"}) == "`whoami` $(id)\n");  // E27
        CHECK(out({"env", "A=1", "B=two", "printenv", "A"}) == "1\n");    // E28
        // E29 as in the checklist, then the same arguments echoed back one by one.
        CHECK(out({"sh", "-c", "printf argv-ok", "argv-test", "space value", "$dollar",
                   "quote'\"value", "line\nbreak"}) == "argv-ok");
        CHECK(out({"sh", "-c", "printf '%s|' \"$0\" \"$@\"", "argv-test", "space value", "$dollar",
                   "quote'\"value", "line\nbreak"}) ==
              "argv-test|space value|$dollar|quote'\"value|line\nbreak|");
        // More of §4.4 / §13.11: empty, shell metacharacters, globs, unsafe `_` and `~`, non-ASCII.
        CHECK(out({"printf", "[%s]", ""}) == "[]");
        CHECK(out({"printf", "[%s]", "foo;rm -rf /"}) == "[foo;rm -rf /]");
        CHECK(out({"printf", "[%s]", "*"}) == "[*]");
        CHECK(out({"printf", "[%s]", "~"}) == "[~]");
        CHECK(out({"printf", "[%s]", "__pycache__"}) == "[__pycache__]");
        CHECK(out({"printf", "[%s]", "it's a\nnew line"}) == "[it's a\nnew line]");
        CHECK(out({"printf", "[%s]", "h\xC3\xA9llo \xE2\x82\xAC"}) ==
              "[h\xC3\xA9llo \xE2\x82\xAC]");
        CHECK(out({"printf", "[%s]", "!x"}) == "[!x]");
        CHECK(out({"printf", "[%s]", "a\\'b"}) == "[a\\'b]");
    }

    TEST_CASE("Session-Id: validated, and a valid one runs the command") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        const std::string invalid = errorBody("Invalid session ID format", "invalid_request");
        for (const auto* sid :
             {"../etc/passwd", "bad/session", "session id", "a..b", "...", "x\xC3\xA9"}) {
            CAPTURE(sid);
            auto r = exec(d.http, id, json{{"argv", {"echo", "hi"}}}, {{"Session-Id", sid}});
            CHECK(r.status == 400);
            CHECK(r.raw == invalid);
        }
        auto tooLong = exec(d.http, id, json{{"argv", {"echo", "hi"}}},
                            {{"Session-Id", std::string(129, 'a')}});
        CHECK(tooLong.raw == invalid);
        // S5: a valid session id runs the command (output comes line by line in session mode).
        auto r = exec(d.http, id, json{{"argv", {"echo", "hi"}}}, {{"Session-Id", "my-session"}});
        INFO(r.describe());
        CHECK(r.wellFormed());
        CHECK(r.out == "hi\n");
        CHECK(r.exitCode == 0);
        auto dots = exec(d.http, id, json{{"argv", {"echo", "dot"}}}, {{"Session-Id", "a.b_c-1"}});
        CHECK(dots.out == "dot\n");
        // An empty Session-Id counts as absent.
        auto empty = exec(d.http, id, json{{"argv", {"echo", "none"}}}, {{"Session-Id", "  "}});
        CHECK(empty.out == "none\n");
    }

    TEST_CASE("timeout_ms: stderr notice, exit 124, the process is gone") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        auto r =
            run(d.http, id, {"sh", "-c", "echo $$ > /workspace/pid; echo started; exec sleep 1000"},
                {{"timeout_ms", 700}});
        INFO(r.describe());
        CHECK(r.wellFormed());
        CHECK(sequence(r) ==
              std::vector<std::string>{"stdout:" + b64("started\n"),
                                       "stderr:" + b64("Command timed out after 700ms\n"),
                                       R"(exit:{"exit_code":124})"});
        std::string pid = sh(d.http, id, "cat /workspace/pid");
        REQUIRE(!pid.empty());
        pid.pop_back();
        // The sleep is gone (checked from inside the sandbox, bounded polling).
        CHECK(waitFor([&] {
            return sh(d.http, id, "test -d /proc/" + pid + " && echo alive || echo gone") ==
                   "gone\n";
        }));
        // No stray sleep under the daemon either.
        CHECK(waitFor([&] {
            for (const auto& p : descendants(d.pid()))
                if (p.comm == "sleep") return false;
            return true;
        }));

        // A fractional timeout is printed as JavaScript would (1.5 → "1.5").
        auto frac = run(d.http, id, {"sleep", "1000"}, {{"timeout_ms", 250.5}});
        CHECK(frac.err == "Command timed out after 250.5ms\n");
        CHECK(frac.exitCode == 124);
        // 0 fires at once.
        auto zero = run(d.http, id, {"sleep", "1000"}, {{"timeout_ms", 0}});
        CHECK(zero.err == "Command timed out after 0ms\n");
        CHECK(zero.exitCode == 124);
        // A command that ends first is not affected; a non-number timeout is ignored.
        auto fast = run(d.http, id, {"echo", "quick"}, {{"timeout_ms", 30000}});
        CHECK(sequence(fast) ==
              std::vector<std::string>{"stdout:" + b64("quick\n"), R"(exit:{"exit_code":0})"});
        auto ignored = run(d.http, id, {"echo", "str"}, {{"timeout_ms", "5"}});
        CHECK(ignored.exitCode == 0);
        // A background child holding the pipes is killed with its group.
        auto bg = run(d.http, id, {"sh", "-c", "sleep 1000 & echo $! > /workspace/bg; wait"},
                      {{"timeout_ms", 500}});
        CHECK(bg.exitCode == 124);
        std::string bgPid = sh(d.http, id, "cat /workspace/bg");
        bgPid.pop_back();
        CHECK(waitFor([&] {
            return sh(d.http, id, "test -d /proc/" + bgPid + " && echo alive || echo gone") ==
                   "gone\n";
        }));
    }

    TEST_CASE("exit codes, command not found, signals: one terminal event each") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        for (int code : {0, 1, 2, 7, 100, 255}) {
            auto r = run(d.http, id, {"sh", "-c", "exit " + std::to_string(code)});
            CHECK(r.wellFormed());
            CHECK(r.exitCode == code);
        }
        auto missing = run(d.http, id, {"no-such-command-xyz"});
        INFO(missing.describe());
        CHECK(missing.wellFormed());
        CHECK(missing.exitCode == 127);
        CHECK(missing.err.find("no-such-command-xyz") != std::string::npos);
        CHECK(missing.events.back().name == "exit");  // a failed command is a normal exit

        auto notExec = run(d.http, id, {"/workspace"});
        CHECK(notExec.wellFormed());
        CHECK(notExec.exitCode == 126);

        // A command killed by a signal: bash reports 128+N.
        auto killed = run(d.http, id, {"sh", "-c", "kill -9 $$"});
        INFO(killed.describe());
        CHECK(killed.wellFormed());
        CHECK(killed.exitCode == 137);
    }

    TEST_CASE("output: binary, large, interleaved; chunks are decoded separately") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        // UTF-8 (split across reads by the command) arrives intact.
        auto utf = run(d.http, id,
                       {"sh", "-c", "printf '\\303'; sleep 0.2; printf '\\251\\342\\202\\254\\n'"});
        CHECK(utf.out == "\xC3\xA9\xE2\x82\xAC\n");
        // NUL and control bytes.
        auto ctl = run(d.http, id, {"printf", "a\\000b\\001\\037\\177"});
        CHECK(ctl.out == std::string("a\0b\x01\x1f\x7f", 6));
        // All 256 byte values. The spec allows the reference's lossy UTF-8 decoding; raw bytes are
        // what a local server SHOULD give.
        std::string all;
        for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
        auto bin = run(d.http, id,
                       {"python3", "-c", "import sys; sys.stdout.buffer.write(bytes(range(256)))"});
        CHECK(bin.wellFormed());
        CHECK(bin.exitCode == 0);
        CHECK(bin.out.substr(0, 128) == all.substr(0, 128));
        WARN_MESSAGE(bin.out == all, "binary stdout is not byte-exact (invalid UTF-8 replaced): "
                                         << bin.out.size() << " bytes");
        // 4 MiB of output, every chunk valid base64 on its own.
        auto big = run(d.http, id, {"sh", "-c", "head -c 4194304 /dev/zero | tr '\\0' x"});
        CHECK(big.wellFormed());
        CHECK(big.out == std::string(4 << 20, 'x'));
        // stdout and stderr both complete.
        auto both =
            run(d.http, id,
                {"sh", "-c", "for i in $(seq 1 2000); do echo out$i; echo err$i >&2; done"});
        std::string eo, ee;
        for (int i = 1; i <= 2000; ++i) {
            eo += "out" + std::to_string(i) + "\n";
            ee += "err" + std::to_string(i) + "\n";
        }
        CHECK(both.out == eo);
        CHECK(both.err == ee);
        // Stdin is closed: a reader sees EOF at once.
        auto in = run(d.http, id, {"sh", "-c", "cat; echo eof"});
        CHECK(in.out == "eof\n");
    }

    TEST_CASE("session-less execs are independent; env and cwd do not persist") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        sh(d.http, id, "cd /tmp; export FOO=bar");
        CHECK(run(d.http, id, {"sh", "-c", "pwd; echo \"[$FOO]\""}).out == "/workspace\n[]\n");
        // The sandbox environment.
        auto env = run(d.http, id, {"sh", "-c", "echo $HOME; echo $PATH"});
        CHECK(env.out.find("/workspace\n") == 0);
        // No secret of the daemon leaks into the sandbox.
        CHECK(run(d.http, id, {"sh", "-c", "env | grep -c SANDBOX_API_KEY || true"}).out == "0\n");
    }

    TEST_CASE("several execs run at once on one sandbox") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        std::vector<std::thread> threads;
        std::vector<ExecResult> results(4);
        for (int i = 0; i < 4; ++i)
            threads.emplace_back([&, i] {
                auto c = d.server.connect();
                results[i] = run(c, id, {"sh", "-c", "sleep 0.5; echo done" + std::to_string(i)});
            });
        for (auto& t : threads) t.join();
        for (int i = 0; i < 4; ++i) {
            CHECK(results[i].wellFormed());
            CHECK(results[i].out == "done" + std::to_string(i) + "\n");
        }
        CHECK(agentPids(d.pid()).size() == 1);
    }

}  // TEST_SUITE
