#include <doctest/doctest.h>

#include "core/errors.hpp"
#include "core/wire.hpp"
#include "core/wire_process.hpp"
#include "core/wire_ws.hpp"

using namespace sandbox::core;
using nlohmann::json;

TEST_CASE("ExecuteRequest round trip and validation") {
    wire::ExecuteRequest r;
    r.command = "echo hi";
    r.sessionId = "s1";
    r.timeoutMs = 500;
    r.env = {{"A", "1"}, {"B", std::nullopt}};
    r.cwd = "/tmp";
    auto back = wire::ExecuteRequest::fromJson(r.toJson());
    CHECK(back.command == "echo hi");
    CHECK(back.sessionId == "s1");
    CHECK(back.timeoutMs == 500);
    CHECK(back.env.at("A") == "1");
    CHECK_FALSE(back.env.at("B"));
    CHECK(back.cwd == "/tmp");
    CHECK_THROWS_AS(wire::ExecuteRequest::fromJson(json::object()), ApiError);
    CHECK_THROWS_AS(wire::ExecuteRequest::fromJson(json{{"command", "x"}, {"timeoutMs", -1}}),
                    ApiError);
    CHECK_THROWS_AS(wire::ExecuteRequest::fromJson(json{{"command", "x"}, {"background", "yes"}}),
                    ApiError);
}

TEST_CASE("stream events are single-line JSON with the spec's fields") {
    auto s = wire::exec_event::output("stdout", "a\n\"b\"", "T");
    CHECK(s.find('\n') == std::string::npos);
    auto j = json::parse(s);
    CHECK(j["type"] == "stdout");
    CHECK(j["data"] == "a\n\"b\"");
    CHECK(j["timestamp"] == "T");
    CHECK_FALSE(json::parse(wire::exec_event::complete(std::nullopt, "T")).contains("exitCode"));
    CHECK(json::parse(wire::exec_event::complete(3, "T"))["exitCode"] == 3);
    CHECK(json::parse(wire::read_event::metadata("image/png", 10, true))["encoding"] == "base64");
    CHECK(json::parse(wire::read_event::complete(7))["bytesRead"] == 7);
    CHECK(wire::read_event::error("gone \"x\"") == R"({"type":"error","error":"gone \"x\""})");
}

TEST_CASE("file requests") {
    auto m = wire::MoveRequest::fromMoveJson(json{{"sourcePath", "a"}, {"destinationPath", "b"}});
    CHECK(m.from == "a");
    CHECK(m.toMoveJson()["destinationPath"] == "b");
    CHECK_THROWS_AS(wire::MoveRequest::fromRenameJson(json{{"oldPath", "a"}}), ApiError);
    auto l =
        wire::ListFilesRequest::fromJson(json{{"path", "/w"}, {"options", {{"recursive", true}}}});
    CHECK(l.recursive);
    CHECK_FALSE(l.includeHidden);
    CHECK_THROWS_AS(wire::ListFilesRequest::fromJson(json{{"path", "/w"}, {"options", 3}}),
                    ApiError);
    auto rr = wire::ReadRequest::fromJson(json{{"path", "/x"}, {"encoding", "utf8"}});
    CHECK(rr.encoding == wire::ReadEncoding::Utf8);
    wire::FileInfo fi;
    fi.name = "n";
    fi.readable = true;
    auto fj = fi.toJson();
    CHECK(fj["permissions"]["readable"] == true);
    CHECK(wire::FileInfo::fromJson(fj).readable);
}

TEST_CASE("ReadResponse::toJsonString is toJson(), escaping DEL") {
    // Found by fuzz_wire: toJsonString() was documented as toJson().dump()'s exact text, but it
    // writes DEL as \u007f (appendJsonString's rule) where dump() writes the byte.
    wire::ReadResponse r;
    r.path = "/a\x7f\"b";
    r.content = std::string("x\x7fy\x01\n\\u007f", 11);
    r.encoding = "utf-8";
    r.mimeType = "text/plain";
    r.size = 11;
    r.timestamp = "t";
    const std::string text = r.toJsonString();
    CHECK(json::parse(text) == r.toJson());
    CHECK(text.find('\x7f') == std::string::npos);
    std::string dumped = r.toJson().dump();
    for (std::size_t p = 0; (p = dumped.find('\x7f', p)) != std::string::npos;)
        dumped.replace(p, 1, "\\u007f");
    CHECK(text == dumped);
}

TEST_CASE("responses: a number out of the field's range reads as absent") {
    // The numeric fields of responses were converted with json::get<T>(), undefined behaviour
    // for a double out of T's range (1e300 as an int exit code, -1.0 as an unsigned size).
    // fuzz_wire's UBSan reports it on such input (corpus/wire/crash-response-number-range); its
    // runs had not produced one by themselves. They now read as absent, like a wrong type.
    for (const char* bad : {"1e300", "-1e300", "2147483648", "-2147483649", "3e9", "\"7\""}) {
        CAPTURE(bad);
        const json j = json::parse(std::string("{\"exitCode\":") + bad + "}");
        CHECK(wire::ExecuteResponse::fromJson(j).exitCode == 0);
    }
    CHECK(wire::ExecuteResponse::fromJson(json{{"exitCode", 2.9}}).exitCode == 2);
    CHECK(wire::ExecuteResponse::fromJson(json{{"exitCode", -2147483648.0}}).exitCode == INT32_MIN);
    CHECK(wire::ExecuteResponse::fromJson(json{{"duration", 1e19}}).duration == 0);
    CHECK(wire::ExecuteResponse::fromJson(json{{"duration", -9.2e18}}).duration ==
          -9200000000000000000);

    CHECK(wire::FileInfo::fromJson(json{{"size", -1.0}}).size == 0);
    CHECK(wire::FileInfo::fromJson(json{{"size", -1}}).size == 0);
    CHECK(wire::FileInfo::fromJson(json{{"size", -0.5}}).size == 0);
    CHECK(wire::FileInfo::fromJson(json{{"size", 1.8e19}}).size == 18000000000000000000ull);
    CHECK(wire::FileInfo::fromJson(json{{"size", 1.9e19}}).size == 0);
    CHECK(wire::ReadResponse::fromJson(json{{"size", 12.0}}).size == 12);

    CHECK_FALSE(wire::ProcessStartedResponse::fromJson(json{{"pid", 1e300}}).pid.has_value());
    CHECK(wire::ProcessStartedResponse::fromJson(json{{"pid", 42}}).pid == 42);
    CHECK_FALSE(wire::ProcessInfo::fromJson(json{{"pid", -1e30}}).pid.has_value());
    CHECK_FALSE(wire::ProcessInfo::fromJson(json{{"exitCode", 1e300}}).exitCode.has_value());
    CHECK(wire::ProcessInfo::fromJson(json{{"exitCode", 3}}).exitCode == 3);
    CHECK_FALSE(
        wire::ProcessInfo::fromJson(json{{"pid", 18446744073709551615ull}}).pid.has_value());
}

TEST_CASE("WebSocket frames: deep nesting is refused, not recursed into") {
    // Found while writing fuzz_wire (beyond its 4 KiB inputs; corpus/wire/crash-ws-body-nesting
    // keeps the check): a /ws frame whose body nests a few hundred thousand arrays crashed the
    // agent, since the body is copied and serialised recursively. Frames are now parsed with
    // core::parseJson, which refuses nesting deeper than 1024.
    const std::size_t n = 300000;
    const std::string deep = std::string(n, '[') + std::string(n, ']');
    wire::WsParseError err{};
    CHECK_FALSE(wire::parseWsRequest(R"({"type":"request","id":"1","body":)" + deep + "}", err));
    CHECK(err == wire::WsParseError::NotJson);
    CHECK_FALSE(wire::parsePtyMessage(R"({"type":"resize","x":)" + deep + "}"));

    auto ok = wire::parseWsRequest(
        R"({"type":"request","id":"7","method":"POST","path":"/api/execute","body":{"command":"ls","a":[[1]]},"headers":{"h":"v","n":1}})",
        err);
    REQUIRE(ok);
    CHECK(err == wire::WsParseError::None);
    CHECK(ok->body == json{{"command", "ls"}, {"a", {{1}}}});
    CHECK(ok->headers == std::vector<std::pair<std::string, std::string>>{{"h", "v"}});
    CHECK(wire::parseWsRequest("{", err) == std::nullopt);
    CHECK(err == wire::WsParseError::NotJson);
    CHECK(wire::parseWsRequest(R"({"type":"other"})", err) == std::nullopt);
    CHECK(err == wire::WsParseError::InvalidRequest);
    auto pty = wire::parsePtyMessage(R"({"type":"resize","cols":80,"rows":24.5})");
    REQUIRE(pty);
    CHECK(pty->cols == 80.0);
    CHECK(pty->rows == 24.5);
}
