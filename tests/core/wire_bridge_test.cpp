// The bridge's own messages (src/core/wire_bridge): pool config parsing, mount/unmount checks,
// the file-URL normalisation of unmount, excludes and form decoding.
#include <doctest/doctest.h>

#include <map>

#include "core/shell.hpp"
#include "core/wire_bridge.hpp"

using namespace sandbox::core::wire;
using nlohmann::json;

TEST_SUITE("core.wire_bridge") {
    TEST_CASE("parseJsInt is JavaScript parseInt(s, 10)") {
        CHECK(parseJsInt("12") == 12);
        CHECK(parseJsInt("12abc") == 12);
        CHECK(parseJsInt("  -3") == -3);
        CHECK(parseJsInt("+7") == 7);
        CHECK_FALSE(parseJsInt("abc"));
        CHECK_FALSE(parseJsInt(""));
        CHECK_FALSE(parseJsInt("-"));
    }

    TEST_CASE("PoolConfig.fromEnv: defaults, NaN and 0 fall back, the batch size is clamped") {
        std::map<std::string, std::string> env;
        auto get = [&](const char* n) -> const char* {
            auto it = env.find(n);
            return it == env.end() ? nullptr : it->second.c_str();
        };
        auto c = PoolConfig::fromEnv(get);
        CHECK(c.warmTarget == 0);
        CHECK(c.refreshInterval == 10000);
        CHECK(c.maxInstances == 0);
        CHECK(c.scaleBatchSize == 5);
        env = {{"WARM_POOL_TARGET", "3x"},
               {"WARM_POOL_REFRESH_INTERVAL", "0"},
               {"WARM_POOL_MAX_INSTANCES", "nope"},
               {"WARM_POOL_SCALE_BATCH_SIZE", "1000"}};
        c = PoolConfig::fromEnv(get);
        CHECK(c.warmTarget == 3);
        CHECK(c.refreshInterval == 10000);
        CHECK(c.maxInstances == 0);
        CHECK(c.scaleBatchSize == 20);
        env = {{"WARM_POOL_TARGET", "-2"}, {"WARM_POOL_SCALE_BATCH_SIZE", "-4"}};
        c = PoolConfig::fromEnv(get);
        CHECK(c.warmTarget == -2);  // negative values pass through (§8.1)
        CHECK(c.scaleBatchSize == 1);
    }

    TEST_CASE("PoolStats renders five keys and a four-key config, in order") {
        PoolStats s;
        CHECK(
            s.toJson() ==
            R"({"warm":0,"assigned":0,"total":0,"config":{"warmTarget":0,"refreshInterval":10000,"maxInstances":0,"scaleBatchSize":5},"maxInstances":null})");
        s.maxInstances = 4;
        CHECK(s.toJson().find(R"("maxInstances":4})") != std::string::npos);
    }

    TEST_CASE("fileUrlPathname normalises as a WHATWG file: URL") {
        CHECK(fileUrlPathname("/mnt/data") == "/mnt/data");
        CHECK(fileUrlPathname("/mnt/data/../..") == "/");
        CHECK(fileUrlPathname("/mnt/data/../buckets/store") == "/mnt/buckets/store");
        CHECK(fileUrlPathname("/mnt\\x") == "/mnt/x");
        CHECK(fileUrlPathname("/mnt/x?y#z") == "/mnt/x");
        CHECK(fileUrlPathname("/mnt/a b") == "/mnt/a%20b");
        CHECK(fileUrlPathname("/mnt/da\tta\n") == "/mnt/data");
        CHECK(fileUrlPathname("/mnt/data/") == "/mnt/data/");
        CHECK(fileUrlPathname("//") == "/");
        CHECK(fileUrlPathname("/a/%2e%2E/b") == "/b");
        CHECK(fileUrlPathname("/a/.") == "/a/");
        CHECK(fileUrlPathname("/caf\xc3\xa9") == "/caf%C3%A9");
    }

    TEST_CASE("formDecode, firstQueryParam, parseExcludes") {
        CHECK(formDecode("a+b%2Cc") == "a b,c");
        CHECK(formDecode("%E0%A4%A") == "%E0%A4%A");
        CHECK(formDecode("%ff") == "%ff");
        CHECK(firstQueryParam("a=1&excludes=x%2Cy&excludes=z", "excludes") == "x,y");
        CHECK(firstQueryParam("token", "token") == "");
        CHECK_FALSE(firstQueryParam("a=1", "b"));
        std::vector<std::string> out;
        CHECK(parseExcludes(std::string("__pycache__,,.venv,"), out));
        CHECK(out == std::vector<std::string>{"__pycache__", ".venv"});
        CHECK_FALSE(parseExcludes(std::string("ok,x..y"), out));
        CHECK(parseExcludes(std::nullopt, out));
        CHECK(out.empty());
    }

    TEST_CASE("MountRequest: the reference's check order and messages") {
        MountRequest m;
        auto bad = [&](const char* body) { return MountRequest::parse(json::parse(body), m); };
        CHECK(bad(R"({"bucket":1,"mountPath":"/m","options":{"endpoint":"e"}})") ==
              "bucket must be a non-empty string");
        CHECK(bad(R"({"bucket":"b","options":{}})") == "mountPath must be a non-empty string");
        CHECK(bad(R"({"bucket":"b","mountPath":"m","options":{}})") ==
              "mountPath must be an absolute path (start with /)");
        CHECK(bad(R"({"bucket":"b","mountPath":"/m","options":[]})") ==
              "options must be an object");
        CHECK(bad(R"({"bucket":"b","mountPath":"/m","options":{"endpoint":null}})") ==
              "options.endpoint must be a string when provided");
        CHECK(bad(R"({"binding":5,"mountPath":"/m","options":{}})") ==
              "binding must be a string when provided");
        CHECK(bad(R"({"binding":"","mountPath":"/m","options":{}})") ==
              "binding must be a non-empty string when provided");
        CHECK(bad(R"({"binding":"B","mountPath":"/m","options":{"endpoint":"e"}})") ==
              "Provide either binding or options.endpoint, not both");
        CHECK(bad(R"({"binding":"B","mountPath":"/m","options":{"s3fsOptions":["a",1]}})") ==
              "options.s3fsOptions must be an array of strings when provided");
        CHECK(bad(R"({"binding":"B","mountPath":"/m","options":{"readOnly":"true"}})") ==
              "options.readOnly must be a boolean when provided");
        CHECK(bad(R"({"binding":"B","mountPath":"/m","options":{"prefix":1}})") ==
              "options.prefix must be a string when provided");
        CHECK(bad(R"({"binding":"B","mountPath":"/m","options":{"credentialProxy":1}})") ==
              "options.credentialProxy must be a boolean when provided");
        CHECK(
            bad(R"({"binding":"B","mountPath":"/m","options":{"credentials":{"accessKeyId":"a"}}})") ==
            "options.credentials must include string accessKeyId and secretAccessKey");
        CHECK(bad(R"({"mountPath":"/m","options":{"endpoint":"e"}})") ==
              "bucket must be a non-empty string for remote mounts");
        CHECK(bad(R"({"mountPath":"/m","options":{}})") ==
              "binding must be a non-empty string for R2 binding mounts");
        // Valid: what is forwarded (MT2, MT6, MT9).
        CHECK(
            bad(R"({"bucket":"b","mountPath":"/m","options":{"endpoint":"https://e","credentials":{"accessKeyId":"AKID","secretAccessKey":"S"},"junk":1}})") ==
            "");
        CHECK(
            m.forwardedOptions().dump() ==
            R"({"endpoint":"https://e","credentials":{"accessKeyId":"AKID","secretAccessKey":"S"}})");
        CHECK(
            bad(R"({"binding":"MY","mountPath":"/m","options":{"readOnly":true,"prefix":"/u/","credentialProxy":true}})") ==
            "");
        CHECK(m.bucket == "MY");
        CHECK(m.forwardedOptions().dump() == R"({"readOnly":true,"prefix":"/u/"})");
    }

    TEST_CASE("UnmountRequest") {
        UnmountRequest u;
        CHECK(UnmountRequest::parse(json::parse("{}"), u) ==
              "mountPath must be a non-empty string");
        CHECK(UnmountRequest::parse(json::parse(R"({"mountPath":"mnt/data"})"), u) ==
              "mountPath must be an absolute path (start with /)");
        CHECK(UnmountRequest::parse(json::parse(R"({"mountPath":"/"})"), u) ==
              "mountPath must not resolve to / (filesystem root)");
        CHECK(UnmountRequest::parse(json::parse(R"({"mountPath":"/mnt/data/../.."})"), u) ==
              "mountPath must not resolve to / (filesystem root)");
        CHECK(UnmountRequest::parse(json::parse(R"({"mountPath":"/mnt/data/../buckets/store"})"),
                                    u) == "");
        CHECK(u.mountPath == "/mnt/buckets/store");
    }
}

TEST_CASE("bridge-api 13.11: shellQuote (Q1-Q16)") {
    using sandbox::core::bridgeQuote;
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"hello", "hello"},
        {"/workspace/foo", "/workspace/foo"},
        {"./some-dir/file.tar", "./some-dir/file.tar"},
        {"hello world", "$'hello world'"},
        {"it's", "$'it\\'s'"},
        {"foo;rm -rf /", "$'foo;rm -rf /'"},
        {"foo`whoami`", "$'foo`whoami`'"},
        {"$(evil)", "$'$(evil)'"},
        {"a|b", "$'a|b'"},
        {"a&b", "$'a&b'"},
        {"", "$''"},
        {"line1\nline2", "$'line1\\nline2'"},
        {"a\rb", "$'a\\rb'"},
        {"a\tb", "$'a\\tb'"},
        {"a\\b", "$'a\\\\b'"},
        {"it's a\nnew line", "$'it\\'s a\\nnew line'"}};
    for (const auto& [in, out] : rows) {
        CAPTURE(in);
        CHECK(bridgeQuote(in) == out);
    }
    CHECK(sandbox::core::bridgeCommand({"echo", "a;b", "c|d", "e&f"}) ==
          "echo $'a;b' $'c|d' $'e&f'");
}
