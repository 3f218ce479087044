#include <doctest/doctest.h>

#include "core/errors.hpp"
#include "core/json_util.hpp"

using namespace sandbox::core;
using nlohmann::json;

TEST_CASE("the code table gives the statuses of the spec") {
    CHECK(httpStatusForCode("FILE_NOT_FOUND") == 404);
    CHECK(httpStatusForCode("FILE_TOO_LARGE") == 413);
    CHECK(httpStatusForCode("SESSION_TERMINATED") == 410);
    CHECK(httpStatusForCode("PYTHON_NOT_AVAILABLE") == 501);
    CHECK(httpStatusForCode("GIT_NETWORK_ERROR") == 502);
    CHECK(httpStatusForCode("PROCESS_READY_TIMEOUT") == 408);
    CHECK(httpStatusForCode("INTERPRETER_NOT_READY") == 503);
    CHECK(httpStatusForCode("SECURITY_VALIDATION_FAILED") == 500);
    CHECK(isRegistryCode("VALIDATION_FAILED"));
    CHECK_FALSE(isRegistryCode("NOPE"));
}

TEST_CASE("envelope carries code, message, context, operation, status, timestamp, suggestion") {
    ApiError e("FILE_NOT_FOUND", "File not found: /x",
               {{"path", "/x"}, {"operation", "file.read"}});
    json j = e.envelope();
    CHECK(j["code"] == "FILE_NOT_FOUND");
    CHECK(j["message"] == "File not found: /x");
    CHECK(j["context"]["path"] == "/x");
    CHECK(j["operation"] == "file.read");
    CHECK(j["httpStatus"] == 404);
    CHECK(j["timestamp"].get<std::string>().size() == 24);
    CHECK(j["suggestion"] == "Ensure the file exists at /x before attempting to access it");
    ApiError plain("INTERNAL_ERROR", "boom");
    CHECK_FALSE(plain.envelope().contains("suggestion"));
    CHECK(plain.envelope()["context"] == json::object());
}

TEST_CASE("strict field readers") {
    json j = json::parse(
        R"({"s":"x","i":5,"f":1.5,"b":true,"n":null,"m":{"A":"1","B":null},"bad":{"A":1}})");
    Fields f(j);
    CHECK(f.optString("s") == "x");
    CHECK_FALSE(f.optString("n"));
    CHECK_THROWS_AS(f.optString("i"), ApiError);
    CHECK(f.optInt("i") == 5);
    CHECK_THROWS_AS(f.optInt("f"), ApiError);
    CHECK_THROWS_AS(f.optInt("i", 10), ApiError);
    CHECK(f.optBool("b") == true);
    CHECK_THROWS_AS(f.optBool("s"), ApiError);
    auto m = f.optStringMap("m");
    CHECK(m.at("A") == "1");
    CHECK_FALSE(m.at("B"));
    CHECK_THROWS_AS(f.optStringMap("bad"), ApiError);
    CHECK_THROWS_AS(f.reqString("missing"), ApiError);
    try {
        f.reqString("missing");
    } catch (const ApiError& e) {
        CHECK(e.httpStatus() == 400);
        CHECK(e.context()["validationErrors"][0]["field"] == "missing");
    }
}

TEST_CASE("parseJsonObject") {
    CHECK(parseJsonObject(R"({"a":1})")["a"] == 1);
    CHECK(parseJsonObject("", true) == json::object());
    CHECK_THROWS_AS(parseJsonObject(""), ApiError);
    CHECK_THROWS_AS(parseJsonObject("{bad"), ApiError);
    CHECK_THROWS_AS(parseJsonObject("[1]"), ApiError);
}

TEST_CASE("parseJson: nesting is bounded") {
    // What it returns is copied and serialised recursively by nlohmann::json, so a peer must not
    // be able to hand it a value deep enough to exhaust the stack.
    auto nested = [](std::size_t n) { return std::string(n, '[') + std::string(n, ']'); };
    CHECK_FALSE(parseJson(nested(1000)).is_discarded());
    CHECK(parseJson(nested(1100)).is_discarded());
    CHECK(parseJson(nested(500000)).is_discarded());
    CHECK(parseJson("{\"a\":" + nested(2000) + "}").is_discarded());
}
