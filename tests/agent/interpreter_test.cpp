// The code interpreter (docs/interpreter.md): /api/interpreter/health, /api/contexts and
// /api/execute/code — shapes, the reference's errors, Python / JavaScript / TypeScript output
// rules, rich output, state and isolation of contexts, streaming, timeouts, executors that die,
// queued runs, large output, many contexts, and no executor left behind.
#include <dirent.h>
#include <doctest/doctest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "agent/agent_test_util.hpp"
#include "core/base64.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using namespace sandbox::testing::agent;
namespace client = sandbox::client;

namespace {

std::string createContext(AgentFixture& a, json body = json::object(),
                          const client::HeaderList& headers = {}) {
    auto r = post(a, "/api/contexts", body, headers);
    INFO(r.raw);
    REQUIRE(r.status == 200);
    return r.body.value("contextId", "");
}

SseReply run(client::HttpConnection& c, const std::string& ctx, const std::string& code,
             json extra = json::object(), const std::function<bool(const json&)>& onEvent = {}) {
    extra["context_id"] = ctx;
    extra["code"] = code;
    return stream(c, "/api/execute/code", extra, {}, onEvent);
}

SseReply run(AgentFixture& a, const std::string& ctx, const std::string& code,
             json extra = json::object()) {
    return run(a.http, ctx, code, std::move(extra));
}

// The text of the run's results, one per result event that has text.
std::vector<std::string> texts(const SseReply& r) {
    std::vector<std::string> out;
    for (const auto& e : r.ofType("result"))
        if (e.contains("text")) out.push_back(e["text"]);
    return out;
}

std::string stdoutOf(const SseReply& r) {
    return r.joined("stdout", "text");
}

// Processes whose parent is `parent` and whose name is one of the runtimes'.
int executorsUnder(pid_t parent) {
    int n = 0;
    DIR* d = ::opendir("/proc");
    while (auto* e = d ? ::readdir(d) : nullptr) {
        if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
        std::string stat = sandbox::testing::readFile(std::string("/proc/") + e->d_name + "/stat");
        auto l = stat.find('('), r = stat.rfind(')');
        if (l == std::string::npos || r == std::string::npos || r + 4 >= stat.size()) continue;
        std::string comm = stat.substr(l + 1, r - l - 1);
        if (stat[r + 2] == 'Z') continue;
        pid_t ppid = std::atoi(stat.c_str() + r + 4);
        if (ppid == parent && (comm.rfind("python", 0) == 0 || comm == "node")) ++n;
    }
    if (d) ::closedir(d);
    return n;
}

}  // namespace

TEST_SUITE("agent.interpreter") {
    TEST_CASE("health, create, list and delete: the reference's shapes") {
        AgentFixture a;
        auto h = get(a, "/api/interpreter/health");
        REQUIRE(h.status == 200);
        CHECK(h.body["success"] == true);
        CHECK(h.body["status"] == "healthy");
        CHECK(isIsoTimestamp(h.body["timestamp"]));

        auto c = post(a, "/api/contexts", {{"language", "python"}});
        REQUIRE(c.status == 200);
        CHECK(c.body["success"] == true);
        CHECK(std::regex_match(c.body.value("contextId", ""),
                               std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                          "[0-9a-f]{12}")));
        CHECK(c.body["language"] == "python");
        CHECK(c.body["cwd"] == a.workspace());
        CHECK(isIsoTimestamp(c.body["timestamp"]));
        const std::string py = c.body["contextId"];

        // Spellings, as the reference maps them; anything else is Python.
        CHECK(post(a, "/api/contexts", {{"language", "JS"}}).body["language"] == "javascript");
        CHECK(post(a, "/api/contexts", {{"language", "ts"}}).body["language"] == "typescript");
        CHECK(post(a, "/api/contexts", {{"language", "cobol"}}).body["language"] == "python");
        CHECK(postRaw(a, "/api/contexts", "").body["language"] == "python");

        auto l = get(a, "/api/contexts");
        REQUIRE(l.status == 200);
        REQUIRE(l.body["contexts"].size() == 5);
        CHECK(l.body["contexts"][0] ==
              json{{"id", py}, {"language", "python"}, {"cwd", a.workspace()}});
        CHECK(l.body["contexts"][1]["language"] == "javascript");

        auto d = call(a.http, "DELETE", "/api/contexts/" + py);
        REQUIRE(d.status == 200);
        CHECK(d.body["success"] == true);
        CHECK(d.body["contextId"] == py);
        auto again = call(a.http, "DELETE", "/api/contexts/" + py);
        checkError(again, 404, "CONTEXT_NOT_FOUND");
        CHECK(again.body["context"]["contextId"] == py);
        CHECK(get(a, "/api/contexts").body["contexts"].size() == 4);
    }

    TEST_CASE("bad input: the reference's errors") {
        AgentFixture a;
        std::string py = createContext(a);
        auto refused = [&](const json& body, int status, const std::string& code,
                           const std::string& message) {
            auto r = post(a, "/api/execute/code", body);
            INFO(r.raw);
            CHECK(r.status == status);
            CHECK(r.body["code"] == code);
            CHECK(r.body["error"] == message);
            CHECK(r.body["details"].is_object());
        };
        refused({{"context_id", "nope"}, {"code", "1"}}, 404, "CONTEXT_NOT_FOUND",
                "Context nope not found");
        refused({{"code", "1"}}, 404, "CONTEXT_NOT_FOUND", "Context undefined not found");
        refused({{"context_id", py}, {"code", "1"}, {"language", "javascript"}}, 500,
                "CODE_EXECUTION_ERROR",
                "Context " + py + " was created for python, cannot execute javascript code");
        refused({{"context_id", py}}, 400, "VALIDATION_FAILED", "code is required");
        // The context's own language, in another spelling, is no mismatch.
        auto ok = run(a, py, "1 + 1", {{"language", "Python3"}});
        CHECK(texts(ok) == std::vector<std::string>{"2"});

        checkValidation(post(a, "/api/contexts", {{"cwd", "/no/such/dir"}}), "INVALID_CWD");
        checkValidation(post(a, "/api/contexts", {{"env_vars", {{"1BAD", "x"}}}}),
                        "INVALID_ENV_NAME");
        checkValidation(post(a, "/api/contexts", {{"language", 7}}));
    }

    TEST_CASE(
        "a runtime that is not installed: 501 PYTHON_NOT_AVAILABLE / JAVASCRIPT_NOT_AVAILABLE") {
        // The agent inherits these: runtimes that do not exist.
        ::setenv("SANDBOX_INTERPRETER_PYTHON", "/nonexistent/python3", 1);
        ::setenv("SANDBOX_INTERPRETER_NODE", "/nonexistent/node", 1);
        AgentFixture a;
        ::unsetenv("SANDBOX_INTERPRETER_PYTHON");
        ::unsetenv("SANDBOX_INTERPRETER_NODE");
        checkError(post(a, "/api/contexts", {{"language", "python"}}), 501, "PYTHON_NOT_AVAILABLE");
        checkError(post(a, "/api/contexts", {{"language", "typescript"}}), 501,
                   "JAVASCRIPT_NOT_AVAILABLE");
        CHECK(get(a, "/api/contexts").body["contexts"].empty());
    }

    TEST_CASE("Python: state, results, stdout, errors and execution_count") {
        AgentFixture a;
        std::string ctx = createContext(a, {{"language", "python"}});
        auto r1 = run(a, ctx, "import math; radius = 5");
        CHECK(r1.types() == std::vector<std::string>{"execution_complete"});
        CHECK(r1.events[0] == json{{"type", "execution_complete"}, {"execution_count", 1}});
        auto r2 = run(a, ctx, "math.pi * radius ** 2");
        CHECK(texts(r2) == std::vector<std::string>{"78.53981633974483"});
        CHECK(r2.ofType("result")[0]["metadata"] == json::object());
        CHECK(r2.ofType("execution_complete")[0]["execution_count"] == 2);

        auto r3 = run(a, ctx, "print('Sum:', sum([1, 2, 3, 4, 5]))\n{'a': 42, 'b': [1, 2]}");
        CHECK(stdoutOf(r3) == "Sum: 15\n");
        auto res = r3.ofType("result");
        REQUIRE(res.size() == 1);
        CHECK(res[0]["json"] == json{{"a", 42}, {"b", {1, 2}}});  // a value, not a string
        CHECK(r3.types().front() == "stdout");

        auto r4 = run(a, ctx, "x = 1\n1/0");
        auto err = r4.ofType("error");
        REQUIRE(err.size() == 1);
        CHECK(err[0]["ename"] == "ZeroDivisionError");
        CHECK(err[0]["evalue"] == "division by zero");
        REQUIRE(err[0]["traceback"].is_array());
        CHECK(err[0]["traceback"].dump().find("1/0") != std::string::npos);
        CHECK(r4.joined("stderr", "text").find("ZeroDivisionError") != std::string::npos);
        CHECK(r4.types().back() == "execution_complete");
        CHECK(texts(run(a, ctx, "x")) == std::vector<std::string>{"1"});  // ran up to the error

        auto r5 = run(a, ctx, "def f(:\n  pass");
        CHECK(r5.ofType("error").at(0)["ename"] == "SyntaxError");
        CHECK(r5.types().back() == "execution_complete");
    }

    TEST_CASE("Python: rich output in order — display(), figures, the last value") {
        AgentFixture a;
        std::string ctx = createContext(a);
        auto r = run(a, ctx, R"(
import matplotlib.pyplot as plt
import pandas as pd
class Svg:
    def _repr_svg_(self): return '<svg xmlns="http://www.w3.org/2000/svg"/>'
display({"shown": 1})
display(Svg())
plt.plot([1, 2, 3], [4, 1, 9])
plt.show()
pd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3, 19]})
)");
        INFO(r.raw.substr(0, 3000));
        auto res = r.ofType("result");
        REQUIRE(res.size() == 5);
        CHECK(res[0]["text"] == "{'shown': 1}");  // display(): its formats (the last value
                                                  // alone turns a dict into json)
        CHECK(res[1]["svg"] == "<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
        REQUIRE(res[2].contains("png"));
        auto png = sandbox::core::base64Decode(res[2]["png"].get<std::string>());
        REQUIRE(png);
        CHECK(png->rfind("\x89PNG\r\n\x1a\n", 0) == 0);
        CHECK(png->size() > 2000);
        CHECK(res[3]["html"].get<std::string>().find("<table") != std::string::npos);
        CHECK(res[3]["html"].get<std::string>().find("Oslo") != std::string::npos);
        CHECK(res[4]["text"].get<std::string>().find("Lima") != std::string::npos);
        for (const auto& e : res) CHECK_MESSAGE(e.size() == 3, e.dump().substr(0, 200));
        CHECK(r.joined("stderr", "text").empty());  // no backend warning
        // A figure is shown once.
        CHECK(run(a, ctx, "1").ofType("result").size() == 1);
    }

    TEST_CASE("contexts are independent; cwd and env_vars are applied") {
        AgentFixture a;
        std::filesystem::create_directories(a.workspace() + "/sub");
        std::string one = createContext(a, {{"cwd", "sub"}, {"env_vars", {{"API_KEY", "k1"}}}});
        std::string two = createContext(a, {{"language", "javascript"}, {"cwd", "/tmp"}});
        std::string three = createContext(a);
        run(a, one, "secret = 41");
        CHECK(texts(run(a, one, "secret + 1")) == std::vector<std::string>{"42"});
        CHECK(run(a, three, "secret").ofType("error").at(0)["ename"] == "NameError");
        CHECK(texts(run(a, one, "import os; os.getcwd()")) ==
              std::vector<std::string>{"'" + a.workspace() + "/sub'"});
        CHECK(texts(run(a, one, "os.environ['API_KEY']")) == std::vector<std::string>{"'k1'"});
        CHECK(texts(run(a, two, "process.cwd()")) == std::vector<std::string>{"'/tmp'"});
    }

    TEST_CASE("JavaScript: persistent declarations, hoisting, top-level await, values") {
        AgentFixture a;
        std::string js = createContext(a, {{"language", "javascript"}});
        CHECK(run(a, js, "const x = 1").ofType("result").empty());
        CHECK(texts(run(a, js, "x + 1")) == std::vector<std::string>{"2"});
        run(a, js, "const x = 5");  // a later run may declare it again, as in a REPL
        CHECK(texts(run(a, js, "x")) == std::vector<std::string>{"5"});
        CHECK(texts(run(a, js, "g(); function g() { return 3 }\ng()")) ==
              std::vector<std::string>{"3"});
        CHECK(texts(run(a, js, "class A { constructor() { this.n = 2 } }; new A().n")) ==
              std::vector<std::string>{"2"});
        CHECK(texts(run(a, js, "let y = await Promise.resolve(7); y")) ==
              std::vector<std::string>{"7"});
        CHECK(texts(run(a, js, "y * 2")) == std::vector<std::string>{"14"});
        auto obj = run(a, js, "({a: 1, b: [2, 3]})");
        CHECK(obj.ofType("result").at(0)["json"] == json{{"a", 1}, {"b", {2, 3}}});
        CHECK(texts(run(a, js, "'/workspace'")) == std::vector<std::string>{"'/workspace'"});
        auto log = run(a, js, "console.log('hi', 1); console.error('oops')");
        CHECK(stdoutOf(log) == "hi 1\n");
        CHECK(log.joined("stderr", "text") == "oops\n");
        auto thrown = run(a, js, "throw new TypeError('bad')");
        CHECK(thrown.ofType("error").at(0)["ename"] == "TypeError");
        CHECK(thrown.ofType("error").at(0)["evalue"] == "bad");
        CHECK(thrown.types().back() == "execution_complete");
        CHECK(texts(run(a, js, "require('fs').existsSync('.')")) ==
              std::vector<std::string>{"true"});
    }

    TEST_CASE("TypeScript: transpiled (types are not checked); a syntax error is TranspileError") {
        AgentFixture a;
        std::string ts = createContext(a, {{"language", "typescript"}});
        CHECK(texts(run(a, ts, "interface P { n: number }\nconst p: P = { n: 2 };\np.n * 3")) ==
              std::vector<std::string>{"6"});
        CHECK(texts(run(a, ts, "let s: string = 5 as any; s")) == std::vector<std::string>{"5"});
        auto bad = run(a, ts, "const x: = ;");
        auto err = bad.ofType("error");
        REQUIRE(err.size() == 1);
        CHECK(err[0]["ename"] == "TranspileError");
        CHECK(bad.joined("stderr", "text").rfind("TypeScript compilation error: ", 0) == 0);
        CHECK(texts(run(a, ts, "p.n")) == std::vector<std::string>{"2"});  // state kept
    }

    TEST_CASE("events stream while the code runs") {
        AgentFixture a;
        std::string ctx = createContext(a);
        const std::string flag = a.workspace() + "/go";
        // The code waits for a file the test makes only once it has seen the first line: if
        // output were held back to the end, the run would time out instead.
        std::string code =
            "import os, time\nprint('waiting', flush=True)\n"
            "while not os.path.exists(" +
            json(flag).dump() +
            "):\n"
            "    time.sleep(0.01)\nprint('done')";
        std::string seen;
        auto r = run(a.http, ctx, code, {{"timeout_ms", 20000}}, [&](const json& e) {
            if (e.value("type", "") == "stdout") seen += e.value("text", "");
            if (seen == "waiting\n") writeFile(flag, "");
            return true;
        });
        INFO(r.raw);
        CHECK(stdoutOf(r) == "waiting\ndone\n");
        CHECK(r.ofType("error").empty());
    }

    TEST_CASE("a result is not held back by output that keeps coming after it") {
        AgentFixture a;
        std::string ctx = createContext(a);
        const std::string flag = a.workspace() + "/stop";
        // After its display(), the code starts a writer that fills stdout faster than it can be
        // read (for at most 20 s), and waits for the file the test makes once it has the result.
        // The answer says whether the writer was still going then: a result held back until
        // the output stops would come only after the writer's end.
        std::string code =
            "import os, subprocess, time\ndisplay('first')\n"
            "w = subprocess.Popen(['timeout', '20', 'yes', 'x' * 200])\n"
            "while not os.path.exists(" +
            json(flag).dump() +
            "):\n"
            "    time.sleep(0.01)\n"
            "alive = w.poll() is None\nw.kill(); w.wait()\nalive";
        bool resultSeen = false;
        auto r = run(a.http, ctx, code, {{"timeout_ms", 60000}}, [&](const json& e) {
            if (e.value("type", "") == "result" && !resultSeen) {
                resultSeen = true;
                writeFile(flag, "");
            }
            return true;
        });
        CHECK(resultSeen);
        CHECK(texts(r).back() == "True");
        CHECK(r.types().back() == "execution_complete");
    }

    TEST_CASE("a timeout interrupts the run and the context stays usable") {
        AgentFixture a;
        std::string py = createContext(a);
        run(a, py, "kept = 'yes'");
        auto r = run(a, py, "import time\ntime.sleep(100)", {{"timeout_ms", 300}});
        CHECK(r.joined("stderr", "text").find("Execution timed out after 300ms") !=
              std::string::npos);
        CHECK(r.ofType("error").at(0)["ename"] == "KeyboardInterrupt");
        CHECK(r.types().back() == "execution_complete");
        CHECK(texts(run(a, py, "kept")) == std::vector<std::string>{"'yes'"});

        std::string js = createContext(a, {{"language", "javascript"}});
        run(a, js, "var kept = 'yes'");
        auto loop = run(a, js, "while (true) {}", {{"timeout_ms", 300}});
        CHECK(loop.ofType("error").size() == 1);
        CHECK(loop.types().back() == "execution_complete");
        auto pending = run(a, js, "await new Promise(() => {})", {{"timeout_ms", 300}});
        CHECK(pending.ofType("error").size() == 1);
        CHECK(texts(run(a, js, "kept")) == std::vector<std::string>{"'yes'"});
    }

    TEST_CASE("an executor that exits mid-run: a clear error; delete and recreate works") {
        AgentFixture a;
        for (auto [language, code] : {std::pair{"python", "import os\nos._exit(3)"},
                                      std::pair{"javascript", "process.exit(3)"}}) {
            INFO(std::string(language));
            std::string ctx = createContext(a, {{"language", language}});
            auto r = run(a, ctx, code);
            auto err = r.ofType("error");
            REQUIRE(err.size() == 1);
            CHECK(err[0]["ename"] == "ExecutorTerminated");
            CHECK(err[0]["evalue"].get<std::string>().find("status 3") != std::string::npos);
            CHECK(r.ofType("execution_complete").empty());
            auto next = post(a, "/api/execute/code", {{"context_id", ctx}, {"code", "1"}});
            CHECK(next.status == 500);
            CHECK(next.body["code"] == "INTERNAL_ERROR");
            CHECK(next.body["error"] ==
                  "Context executor has terminated. Please delete and recreate the context.");
            CHECK(call(a.http, "DELETE", "/api/contexts/" + ctx).status == 200);
            std::string fresh = createContext(a, {{"language", language}});
            CHECK(texts(run(a, fresh, "1 + 1")) == std::vector<std::string>{"2"});
        }
    }

    TEST_CASE("runs on one context queue in arrival order") {
        AgentFixture a;
        std::string ctx = createContext(a);
        run(a, ctx, "seq = []");
        const std::string flag = a.workspace() + "/release";
        std::atomic<bool> started{false};
        std::thread first([&] {
            client::HttpConnection c(a.http.endpoint());
            run(c, ctx,
                "import os, time\nprint('started', flush=True)\nwhile not os.path.exists(" +
                    json(flag).dump() + "):\n    time.sleep(0.01)\nseq.append(1)",
                {{"timeout_ms", 20000}}, [&](const json& e) {
                    if (e.value("type", "") == "stdout") started = true;  // its first piece
                    return true;
                });
        });
        REQUIRE(waitFor([&] { return started.load(); }));
        std::thread second([&] {
            client::HttpConnection c(a.http.endpoint());
            auto r = run(c, ctx, "seq.append(2)\nseq");
            CHECK(r.ofType("result").at(0)["json"] == json{1, 2});
        });
        writeFile(flag, "");
        first.join();
        second.join();
    }

    TEST_CASE("a run printing 50 MiB arrives whole") {
        AgentFixture a;
        std::string ctx = createContext(a);
        std::size_t total = 0;
        bool onlyX = true;
        auto r = run(a.http, ctx, "print('x' * (50 << 20))", {}, [&](const json& e) {
            if (e.value("type", "") == "stdout") {
                const auto& t = e["text"].get_ref<const std::string&>();
                total += t.size();
                onlyX = onlyX && t.find_first_not_of("x\n") == std::string::npos;
            }
            return true;
        });
        CHECK(total == (50u << 20) + 1);
        CHECK(onlyX);
        CHECK(r.types().back() == "execution_complete");
    }

    TEST_CASE("20 contexts at once, and none of their executors outlives them") {
        AgentFixture a;
        std::vector<std::string> ids(20);
        std::vector<std::thread> threads;
        for (int i = 0; i < 20; ++i)
            threads.emplace_back([&, i] {
                client::HttpConnection c(a.http.endpoint());
                auto r = post(c, "/api/contexts", {{"language", i % 2 ? "javascript" : "python"}});
                if (r.status != 200) return;
                ids[i] = r.body["contextId"];
                auto out = run(c, ids[i], std::to_string(i) + " * 2");
                CHECK(texts(out) == std::vector<std::string>{std::to_string(i * 2)});
            });
        for (auto& t : threads) t.join();
        for (const auto& id : ids) REQUIRE_FALSE(id.empty());
        CHECK(get(a, "/api/contexts").body["contexts"].size() == 20);
        CHECK(executorsUnder(a.server.pid()) >= 20);
        for (const auto& id : ids)
            CHECK(call(a.http, "DELETE", "/api/contexts/" + id).status == 200);
        // What is left is the pool's spares: one per language used.
        CHECK(waitFor([&] { return executorsUnder(a.server.pid()) <= 2; }));
    }

    TEST_CASE("a client that hangs up interrupts its run; a session's contexts end with it") {
        AgentFixture a;
        std::string ctx = createContext(a);
        run(a, ctx, "kept = 1");
        auto r = run(a.http, ctx, "import time\nprint('go', flush=True)\ntime.sleep(100)", {},
                     [](const json& e) { return e.value("type", "") != "stdout"; });
        CHECK(texts(run(a, ctx, "kept")) == std::vector<std::string>{"1"});

        REQUIRE(post(a, "/api/session/create", {{"id", "s1"}}).status == 200);
        std::string inSession = createContext(a, json::object(), {{"X-Session-Id", "s1"}});
        CHECK(get(a, "/api/contexts").body["contexts"].size() == 2);
        REQUIRE(post(a, "/api/session/delete", {{"sessionId", "s1"}}).status == 200);
        auto left = get(a, "/api/contexts").body["contexts"];
        REQUIRE(left.size() == 1);
        CHECK(left[0]["id"] == ctx);
    }
}
