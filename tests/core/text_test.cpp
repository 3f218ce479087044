#include <doctest/doctest.h>

#include "core/mime.hpp"
#include "core/shell.hpp"
#include "core/text.hpp"

using namespace sandbox::core;

TEST_CASE("normalizeSessionOutput follows the line-rebuilding rules") {
    CHECK(normalizeSessionOutput("") == "");
    CHECK(normalizeSessionOutput("hi\n") == "hi");
    CHECK(normalizeSessionOutput("hi") == "hi");
    CHECK(normalizeSessionOutput("a\nb\n") == "a\nb");
    CHECK(normalizeSessionOutput("a\n\n") == "a\n");
    CHECK(normalizeSessionOutput("\n") == "");
    CHECK(normalizeSessionOutput(std::string("a\0b\n", 4)) == "ab");
    CHECK(normalizeSessionOutput("cr\r\n") == "cr\r");
    CHECK(normalizeSessionOutput("\xff\n") == "\xEF\xBF\xBD");
}

TEST_CASE("resolvePath") {
    CHECK(resolvePath("/workspace", "a/b") == "/workspace/a/b");
    CHECK(resolvePath("/workspace", "../etc") == "/etc");
    CHECK(resolvePath("/workspace", "/abs//x/./y/") == "/abs/x/y");
    CHECK(resolvePath("/", "..") == "/");
    CHECK(resolvePath("/a/b", ".") == "/a/b");
    CHECK(resolvePath("/a", "../../..") == "/");
}

TEST_CASE("pathProblems") {
    CHECK(pathProblems("/ok").empty());
    CHECK(pathProblems("") == "Path must be a non-empty string");
    CHECK(pathProblems(std::string("a\0b", 3)) == "Path contains null bytes");
    CHECK(pathProblems(std::string(4097, 'a')) == "Path too long (max 4096 characters)");
    CHECK(pathProblems(std::string(4096, 'a')).empty());
}

TEST_CASE("shellQuote and env names") {
    CHECK(shellQuote("abc") == "'abc'");
    CHECK(shellQuote("") == "''");
    CHECK(shellQuote("it's") == "'it'\\''s'");
    CHECK(isValidEnvName("_A1"));
    CHECK(isValidEnvName("path"));
    CHECK_FALSE(isValidEnvName("1A"));
    CHECK_FALSE(isValidEnvName(""));
    CHECK_FALSE(isValidEnvName("A-B"));
    CHECK_FALSE(isValidEnvName("A B"));
}

TEST_CASE("mime types and text classification") {
    CHECK(mimeTypeForPath("/x/a.txt") == "text/plain");
    CHECK(mimeTypeForPath("A.PNG") == "image/png");
    CHECK(mimeTypeForPath("/x/noext") == "application/octet-stream");
    CHECK(mimeTypeForPath("/x/.bashrc") == "application/octet-stream");
    CHECK(mimeTypeForPath("/x/dir.d/file") == "application/octet-stream");
    CHECK(isTextMimeType("text/html"));
    CHECK(isTextMimeType("application/json"));
    CHECK(isTextMimeType("application/ld+json"));
    CHECK(isTextMimeType("image/svg+xml"));
    CHECK(isTextMimeType("inode/x-empty"));
    CHECK(isTextMimeType("application/x-sh; charset=utf-8"));
    CHECK_FALSE(isTextMimeType("application/octet-stream"));
    CHECK_FALSE(isTextMimeType("image/png"));
    CHECK_FALSE(
        isTextMimeType("application/vnd.openxmlformats-officedocument.wordprocessingml.document"));
}
