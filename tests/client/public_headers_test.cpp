// The public headers compile where the C library defines stdin/stdout/stderr as expressions
// rather than as themselves: musl (Alpine, the usual container base) writes
// `#define stdout (stdout)`, and so does MSVC's CRT in spirit. glibc's `#define stdout stdout`
// hides a member named `stdout`; the others turn `result.stdout` into a syntax error. So no
// public declaration may be named after them.
#include <cstdio>
#undef stdin
#undef stdout
#undef stderr
#define stdin (stdin)
#define stdout (stdout)
#define stderr (stderr)

#include <doctest/doctest.h>

#include "sandbox/base64.hpp"
#include "sandbox/client.hpp"
#include "sandbox/errors.hpp"
#include "sandbox/git_watch.hpp"
#include "sandbox/process.hpp"
#include "sandbox/pty.hpp"
#include "sandbox/pull_iterator.hpp"
#include "sandbox/sandbox.hpp"
#include "sandbox/sse.hpp"
#include "sandbox/types.hpp"
#include "sandbox/version.hpp"

TEST_CASE("public headers: the output fields compile under musl's stdio macros") {
    sandbox::ExecResult r;
    r.stdoutText = "out";
    r.stderrText = "err";
    sandbox::ProcessLogs logs;
    logs.stdoutText = r.stdoutText;
    logs.stderrText = r.stderrText;
    CHECK(logs.stdoutText == "out");
    CHECK(logs.stderrText == "err");
    // The macros are what a consumer on musl sees, and they still name the C streams.
    CHECK(stdout != nullptr);
}

TEST_CASE("version.hpp: one version for the headers and the library") {
    CHECK(sandbox::kVersion == SANDBOX_VERSION_STRING);
    CHECK(sandbox::libraryVersion() == sandbox::kVersion);
    CHECK(SANDBOX_VERSION_MAJOR >= 0);
}
