// The code interpreter through the SDK (sandbox/interpreter.hpp), on every transport:
// contexts, runCode with its result and callbacks, runCodeStream, default contexts, rich
// output decoded, errors typed; over the narrow bridge, UnsupportedOperationError.
#include <atomic>
#include <sandbox/sandbox.hpp>

#include "sdk/sdk_fixture.hpp"

using namespace sandbox;
using namespace sandbox::testing::sdk;
using std::chrono::milliseconds;

TEST_CASE("interpreter over the narrow bridge: a typed error naming the transport needed") {
    if (!isNarrow()) return;
    auto sb = freshSandbox("inarrow");
    auto expect = [](auto&& f) {
        try {
            f();
            FAIL("no exception");
        } catch (const UnsupportedOperationError& e) {
            CHECK(std::string(e.what()).find("container API") != std::string::npos);
        }
    };
    expect([&] { sb.createCodeContext(); });
    expect([&] { sb.runCode("1"); });
    expect([&] { sb.runCodeStream("1"); });
    expect([&] { sb.listCodeContexts(); });
    expect([&] { sb.deleteCodeContext("x"); });
}

TEST_CASE("runCode: the docs' examples, state kept in a context") {
    if (isNarrow()) return;
    auto sb = freshSandbox("icode");
    auto ctx = sb.createCodeContext({.language = "python"});
    CHECK(ctx.language == "python");
    CHECK(ctx.cwd == ws());
    CHECK(!ctx.id.empty());
    sb.runCode("import math; radius = 5", {.context = ctx});
    auto r = sb.runCode("math.pi * radius ** 2", {.context = ctx});
    REQUIRE(r.results.size() == 1);
    CHECK(r.results[0].text == "78.53981633974483");
    CHECK(r.results[0].formats() == std::vector<std::string>{"text"});
    CHECK(r.code == "math.pi * radius ** 2");
    CHECK(r.executionCount == 2);
    CHECK_FALSE(r.error);

    auto sum = sb.runCode("data = [1, 2, 3, 4, 5]\nprint(f'Sum: {sum(data)}')\nsum(data)",
                          {.context = ctx});
    CHECK(sum.logs.stdoutLines.size() >= 1);
    std::string out;
    for (const auto& l : sum.logs.stdoutLines) out += l;
    CHECK(out == "Sum: 15\n");
    CHECK(sum.results.at(0).text == "15");

    auto err = sb.runCode("1 / 0", {.context = ctx});
    REQUIRE(err.error);
    CHECK(err.error->name == "ZeroDivisionError");
    CHECK(err.error->value == "division by zero");
    CHECK_FALSE(err.error->traceback.empty());

    bool listed = false;
    for (const auto& c : sb.listCodeContexts()) listed = listed || c.id == ctx.id;
    CHECK(listed);
    sb.deleteCodeContext(ctx.id);
    CHECK_THROWS_AS(sb.deleteCodeContext(ctx.id), ContextNotFoundError);
    CHECK_THROWS_AS(sb.runCode("1", {.context = ctx}), ContextNotFoundError);
}

TEST_CASE("runCode: callbacks in order, rich output decoded, JavaScript and TypeScript") {
    if (isNarrow()) return;
    auto sb = freshSandbox("irich");
    std::vector<std::string> seen;
    auto r = sb.runCode(
        "import matplotlib.pyplot as plt\nprint('plotting')\nplt.plot([1, 2, 3])\nplt.show()\n"
        "import pandas as pd\npd.DataFrame({'a': [1, 2]})",
        {.onStdout = [&](const OutputMessage& m) { seen.push_back("out:" + m.text); },
         .onResult = [&](const Result& res) { seen.push_back("result:" + res.formats()[0]); }});
    CHECK_FALSE(r.error);
    REQUIRE(r.results.size() == 3);
    auto png = r.results[0].pngBytes();
    REQUIRE(png);
    CHECK(png->rfind("\x89PNG\r\n\x1a\n", 0) == 0);
    CHECK(r.results[1].html.value_or("").find("<table") != std::string::npos);
    CHECK(seen.back() == "result:text");
    CHECK(seen.front().rfind("out:plotting", 0) == 0);

    auto dict = sb.runCode("{'a': 42, 'b': [1, 2]}");
    REQUIRE(dict.results.size() == 1);
    CHECK(dict.results[0].json == nlohmann::json{{"a", 42}, {"b", {1, 2}}});

    // Without a context: one default context per language, reused.
    sb.runCode("const greeting = 'hi'", {.language = "javascript"});
    CHECK(sb.runCode("greeting.toUpperCase()", {.language = "js"}).results.at(0).text == "'HI'");
    CHECK(sb.runCode("const n: number = 4; n * 2", {.language = "typescript"}).results.at(0).text ==
          "8");
    std::string onError;
    auto thrown = sb.runCode(
        "throw new RangeError('out')",
        {.language = "javascript", .onError = [&](const ExecutionError& e) { onError = e.name; }});
    CHECK(thrown.error->name == "RangeError");
    CHECK(onError == "RangeError");
}

TEST_CASE("runCodeStream: events as they happen; a timeout keeps the context") {
    if (isNarrow()) return;
    auto sb = freshSandbox("istream");
    auto ctx = sb.createCodeContext({.language = "python", .envVars = {{"GREETING", "hej"}}});
    std::vector<CodeEvent::Type> types;
    std::string text;
    for (auto& ev :
         sb.runCodeStream("import os\nprint(os.environ['GREETING'])\n7 * 6", {.context = ctx})) {
        types.push_back(ev.type);
        if (ev.type == CodeEvent::Type::Stdout) text += ev.text;
        if (ev.type == CodeEvent::Type::Result) CHECK(ev.result->text == "42");
    }
    CHECK(text == "hej\n");
    REQUIRE(types.size() >= 3);
    CHECK(types.back() == CodeEvent::Type::Complete);

    auto slow = sb.runCode("import time\ntime.sleep(60)", {.context = ctx, .timeout = 300ms});
    REQUIRE(slow.error);
    CHECK(slow.error->name == "KeyboardInterrupt");
    CHECK(sb.runCode("1 + 1", {.context = ctx}).results.at(0).text == "2");

    CHECK_THROWS_AS(sb.createCodeContext({.language = "cobol"}), SandboxSecurityError);
    CHECK_THROWS_AS(sb.createCodeContext({.cwd = "/no/such/dir"}), ValidationFailedError);
}

TEST_CASE("a session's code contexts end with the session") {
    if (isNarrow()) return;
    auto sb = freshSandbox("isession");
    auto session = sb.createSession({.id = "with-contexts"});
    auto mine = session.createCodeContext({.language = "python"});
    auto sandboxWide = sb.createCodeContext({.language = "python"});
    CHECK(session.runCode("21 * 2", {.context = mine}).results.at(0).text == "42");
    sb.deleteSession("with-contexts");
    CHECK_THROWS_AS(sb.runCode("1", {.context = mine}), ContextNotFoundError);
    CHECK(sb.runCode("1", {.context = sandboxWide}).results.at(0).text == "1");
}
