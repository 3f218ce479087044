// sandboxd's rules for client-supplied paths (daemon/paths.hpp, resolveWorkspacePath): pure
// functions, tested without a daemon. tests/fuzz/fuzz_paths.cpp checks their invariants on
// arbitrary input.
#include <doctest/doctest.h>

#include <string>

#include "daemon/paths.hpp"
#include "daemon/workspace_fs.hpp"

using namespace sandbox::daemon;
using namespace std::string_literals;

TEST_CASE("resolveWorkspacePath: /workspace or below, normalised") {
    CHECK(resolveWorkspacePath("a/./b//c/") == "/workspace/a/b/c");
    CHECK(resolveWorkspacePath("/workspace/a/../b") == "/workspace/b");
    CHECK(resolveWorkspacePath("/workspace") == "/workspace");
    CHECK(resolveWorkspacePath("../etc") == "");
    CHECK(resolveWorkspacePath("/workspace2") == "");
    CHECK(resolveWorkspacePath("/") == "");
}

TEST_CASE("resolveWorkspacePath: a NUL byte is refused") {
    // Found by fuzz_paths: "/workspace/a\0b" was accepted as is, and the file routes open the
    // result as a C string, so PUT /file/workspace/a%00b wrote /workspace/a.
    CHECK(resolveWorkspacePath("/workspace/a\0b"s) == "");
    CHECK(resolveWorkspacePath("a\0"s) == "");
    CHECK(resolveWorkspacePath("\0"s) == "");
    CHECK(resolveWorkspacePath("/workspace/x\0/../.."s) == "");
}

TEST_CASE("mountPathRefused: /, /workspace, system directories, NUL bytes") {
    CHECK(mountPathRefused("/mnt/data").empty());
    CHECK(mountPathRefused("/workspace/data").empty());
    CHECK_FALSE(mountPathRefused("/").empty());
    CHECK_FALSE(mountPathRefused("/workspace").empty());
    CHECK_FALSE(mountPathRefused("/run/sandbox").empty());
    CHECK(mountPathRefused("/runner").empty());
    // Found by fuzz_paths: the mount point is made one C string per component, so "/proc\0x"
    // passed every check and then mounted over /proc ("/workspace\0x" over /workspace).
    for (const auto& p : {"/proc\0x"s, "/workspace\0/data"s, "/mnt/a\0b"s, "/run\0"s}) {
        const std::string n = normaliseSandboxPath(p);
        CHECK(mountPathRefused(n) == "a mount path cannot contain a NUL byte");
    }
}

TEST_CASE("normaliseSandboxPath") {
    CHECK(normaliseSandboxPath("/mnt/./data//x/../y/") == "/mnt/data/y");
    CHECK(normaliseSandboxPath("/../..") == "/");
    CHECK(normaliseSandboxPath("") == "/");
    CHECK(normaliseSandboxPath("relative/a") == "/relative/a");
}

TEST_CASE("decodeBridgePath and removeDotSegments: the router's view of a path") {
    CHECK(decodeBridgePath("/file/a%20b") == "/file/a b");
    CHECK(decodeBridgePath("/file/a%2Fb%25") == "/file/a%2Fb%25");  // reserved: kept encoded
    CHECK(decodeBridgePath("/file/%e9") == "/file/%e9");            // not UTF-8: verbatim
    CHECK(decodeBridgePath("/file/%C3%A9%") == "/file/\xC3\xA9%");
    CHECK(removeDotSegments("/a/b/../c/./d") == "/a/c/d");
    CHECK(removeDotSegments("/a/b/..") == "/a/");
    CHECK(removeDotSegments("/../../x") == "/x");
    CHECK(removeDotSegments("/a//b/") == "/a//b/");
}
