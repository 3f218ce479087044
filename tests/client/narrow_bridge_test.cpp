// The pure parts of the narrow-bridge transport and the error mapping: listings, paths, errors.
#include <doctest/doctest.h>

#include <string>

#include "client/error_mapping.hpp"
#include "client/narrow_bridge.hpp"
#include "sandbox/errors.hpp"

namespace sandbox::detail {
namespace {

using namespace std::string_literals;

TEST_CASE("narrow bridge: find's records become FileInfo") {
    std::string out =
        "f\t12\t2026-12-07T10:00:00.0000000000\t644\ta.txt\0"s
        "d\t4096\t2026-12-07T10:00:01.0000000000\t755\tsub\0"s
        "l\t7\t2026-12-07T10:00:02.0000000000\t777\tsub/link\0"s
        "p\t0\t2026-12-07T10:00:03.0000000000\t600\tfifo"s;  // last without NUL
    auto files = parseFindListing(out, "/workspace/dir");
    REQUIRE(files.size() == 4);
    CHECK(files[0].name == "a.txt");
    CHECK(files[0].absolutePath == "/workspace/dir/a.txt");
    CHECK(files[0].relativePath == "a.txt");
    CHECK(files[0].type == "file");
    CHECK(files[0].size == 12);
    CHECK(files[0].mode == "rw-r--r--");
    CHECK(files[0].permissions.readable);
    CHECK(files[0].permissions.writable);
    CHECK_FALSE(files[0].permissions.executable);
    CHECK(files[1].type == "directory");
    CHECK(files[1].mode == "rwxr-xr-x");
    CHECK(files[2].type == "symlink");
    CHECK(files[2].name == "link");
    CHECK(files[2].relativePath == "sub/link");
    CHECK(files[3].type == "other");
    CHECK(files[3].mode == "rw-------");
}

TEST_CASE("narrow bridge: names with tabs and newlines survive; malformed records are skipped") {
    std::string out =
        "f\t1\tT\t644\tname\twith\ttabs\nand newline\0"s
        "f\tx\tT\t644\tbad-size\0"s
        "f\t1\tT\t9\tbad-mode\0"s
        "f\t1\tT\t644\t\0"s  // empty name
        "garbage\0"s
        "ff\t1\tT\t644\tbad-type\0"s;
    auto files = parseFindListing(out, "/w");
    REQUIRE(files.size() == 1);
    CHECK(files[0].name == "name\twith\ttabs\nand newline");
}

TEST_CASE("narrow bridge: paths") {
    CHECK(bridgeWorkspacePath("a/b") == "/workspace/a/b");
    CHECK(bridgeWorkspacePath("/tmp/x") == "/tmp/x");
    CHECK(bridgePathPart("/workspace/a b/ü?#%") == "/workspace/a%20b/%C3%BC%3F%23%25");
}

TEST_CASE("narrow bridge: a command's stderr names the file error") {
    auto code = [](const std::string& err) {
        try {
            throwFileErrorFromStderr("/p", err, 1, "file.op");
        } catch (const SandboxError& e) {
            return e.code() + " " + std::to_string(e.httpStatus());
        }
        return std::string("nothing thrown");
    };
    CHECK(code("mv: cannot stat 'x': No such file or directory") == "FILE_NOT_FOUND 404");
    CHECK(code("mkdir: cannot create directory: Permission denied") == "PERMISSION_DENIED 403");
    CHECK(code("mkdir: cannot create directory 'x': File exists") == "FILE_EXISTS 409");
    CHECK(code("Is a directory") == "IS_DIRECTORY 400");
    CHECK(code("mkdir: Not a directory") == "NOT_DIRECTORY 400");
    CHECK(code("disk on fire") == "FILESYSTEM_ERROR 500");
    CHECK_THROWS_AS(throwFileErrorFromStderr("/p", "No such file", 1, "op"), FileNotFoundError);
}

TEST_CASE("error mapping: container envelope, bridge body, anything else") {
    CHECK_THROWS_AS(
        throwErrorFromResponse(404,
                               R"({"code":"FILE_NOT_FOUND","message":"File not found: /x",
                                               "context":{"path":"/x"},"httpStatus":404})",
                               "file.read"),
        FileNotFoundError);
    try {
        throwErrorFromResponse(401, R"({"error":"Unauthorized","code":"unauthorized"})", "op");
        FAIL("nothing thrown");
    } catch (const AuthenticationError& e) {
        CHECK(e.httpStatus() == 401);
        CHECK(e.operation() == "op");
    }
    try {
        throwErrorFromResponse(502, "<html>bad gateway</html>", "op");
        FAIL("nothing thrown");
    } catch (const SandboxError& e) {
        CHECK(e.code() == "INTERNAL_ERROR");
        CHECK(e.httpStatus() == 502);
        CHECK(std::string(e.what()).find("bad gateway") != std::string::npos);
    }
}

}  // namespace
}  // namespace sandbox::detail
