// The stream events as JSON (to_string / to_json): the container API's own event lines, so
// that a relayed stream reads like the original; and request bodies with text that is not UTF-8.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "client/error_mapping.hpp"
#include "sandbox/errors.hpp"
#include "sandbox/git_watch.hpp"
#include "sandbox/process.hpp"
#include "sandbox/types.hpp"

namespace sandbox {
namespace {

using nlohmann::json;

TEST_CASE("ExecEvent to JSON: the exec stream's events") {
    ExecEvent start{.type = ExecEvent::Type::Start, .command = "ls", .timestamp = "T"};
    CHECK(to_string(start) == R"({"type":"start","command":"ls","timestamp":"T"})");
    ExecEvent out{.type = ExecEvent::Type::Stdout, .data = "hi\n", .timestamp = "T"};
    json j = out;
    CHECK(j == json{{"type", "stdout"}, {"data", "hi\n"}, {"timestamp", "T"}});
    ExecEvent err{.type = ExecEvent::Type::Stderr, .data = "caf\xe9", .timestamp = "T"};
    CHECK(json(err)["data"] == "caf\xef\xbf\xbd");  // not UTF-8: replaced, never an exception
    ExecEvent done{.type = ExecEvent::Type::Complete, .exitCode = 3, .timestamp = "T"};
    CHECK(json(done) == json{{"type", "complete"}, {"exitCode", 3}, {"timestamp", "T"}});
    ExecEvent failed{.type = ExecEvent::Type::Error, .data = "boom", .timestamp = "T"};
    CHECK(json(failed)["type"] == "error");
    CHECK(to_string(failed).find("boom") != std::string::npos);
}

TEST_CASE("LogEvent and FileWatchEvent to JSON") {
    LogEvent info;
    info.type = LogEvent::Type::ProcessInfo;
    info.processId = "p1";
    info.command = "sleep 1";
    info.status = ProcessStatus::Running;
    info.timestamp = "T";
    json i = info;
    CHECK(i["processId"] == "p1");
    CHECK(i["status"] == "running");
    LogEvent exit;
    exit.type = LogEvent::Type::Exit;
    exit.processId = "p1";
    exit.exitCode = 0;
    exit.status = ProcessStatus::Completed;
    exit.timestamp = "T";
    CHECK(json(exit)["exitCode"] == 0);
    CHECK(json(exit)["type"] == "exit");

    FileWatchEvent ev;
    ev.type = FileWatchEvent::Type::Event;
    ev.eventType = "create";
    ev.path = "/workspace/a";
    ev.timestamp = "T";
    json w = ev;
    CHECK(w["eventType"] == "create");
    CHECK(w["path"] == "/workspace/a");
    CHECK(w["isDirectory"] == false);
}

TEST_CASE("a request body with text that is not UTF-8 is a ValidationFailedError") {
    json body{{"command", "echo caf\xe9"}};
    try {
        detail::jsonBody(body, "command.execute");
        FAIL("no exception");
    } catch (const ValidationFailedError& e) {
        CHECK(e.code() == "VALIDATION_FAILED");
        CHECK(e.httpStatus() == 400);
        CHECK(e.operation() == "command.execute");
    }
    CHECK(detail::jsonBody(json{{"command", "echo caf\xc3\xa9"}}, "x") ==
          "{\"command\":\"echo caf\xc3\xa9\"}");
}

}  // namespace
}  // namespace sandbox
