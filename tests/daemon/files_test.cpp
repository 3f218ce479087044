// sandboxd: GET / PUT /v1/sandbox/<id>/file/<path> (spec §2.3, §4.3, §5.7, §5.8, §13.8,
// §13.16), path containment, symlinks and special files.
#include <sys/stat.h>

#include "daemon/daemon_test_util.hpp"

using namespace sandbox::testing;
using namespace sandbox::testing::daemon;
namespace client = sandbox::client;
using sandbox::SseEvent;
using sandbox::SseParser;

namespace {

constexpr std::size_t kLimit = 32u * 1024 * 1024;

std::string fileUrl(const std::string& id, const std::string& path) {
    return sandboxPath(id, "/file/" + path);
}

Reply put(DaemonFixture& d, const std::string& id, const std::string& path, std::string_view body,
          const client::HeaderList& headers = {{"Content-Type", "application/octet-stream"}}) {
    return call(d.http, "PUT", fileUrl(id, path), body, headers);
}

Reply get(DaemonFixture& d, const std::string& id, const std::string& path,
          const client::HeaderList& headers = {}) {
    return call(d.http, "GET", fileUrl(id, path), {}, headers);
}

}  // namespace

TEST_SUITE("daemon.files") {
    TEST_CASE("PUT then GET: all 256 byte values, empty files, nested directories") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        std::string all;
        for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
        auto w = put(d, id, "workspace/bytes.bin", all);
        CHECK(w.status == 200);
        CHECK(w.contentType == "application/json");
        CHECK(w.raw == R"({"ok":true})");
        auto r = get(d, id, "workspace/bytes.bin");
        CHECK(r.status == 200);
        CHECK(r.contentType == "application/octet-stream");
        CHECK(r.raw == all);
        // The same bytes on disk and inside the sandbox.
        CHECK(readFile(d.workspace(id) + "/bytes.bin") == all);
        CHECK(sh(d.http, id,
                 "od -An -tx1 /workspace/bytes.bin | tr -d ' \\n' | md5sum | cut -c1-32") ==
              sh(d.http, id,
                 "python3 -c \"print(bytes(range(256)).hex(), end='')\" | md5sum | cut -c1-32"));

        // Overwrite, empty body, created parents, text written by a command.
        CHECK(put(d, id, "workspace/bytes.bin", "short").status == 200);
        CHECK(get(d, id, "workspace/bytes.bin").raw == "short");
        CHECK(put(d, id, "workspace/empty", "").status == 200);
        auto empty = get(d, id, "workspace/empty");
        CHECK(empty.status == 200);
        CHECK(empty.raw.empty());
        CHECK(put(d, id, "workspace/a/b/c/deep.txt", "deep").status == 200);
        CHECK(sh(d.http, id, "cat /workspace/a/b/c/deep.txt") == "deep");
        sh(d.http, id, "printf 'from exec' > /workspace/cmd.txt");
        CHECK(get(d, id, "workspace/cmd.txt").raw == "from exec");
        // Any content type works for PUT (W1/W7), and PNG magic bytes stay intact.
        std::string png("\x89PNG\r\n\x1a\n", 8);
        CHECK(put(d, id, "workspace/image.png", png, {{"Content-Type", "text/plain"}}).status ==
              200);
        CHECK(get(d, id, "workspace/image.png").raw == png);
        // Paths: redundant slashes and dots, percent-decoded names (§2.3), a literal %2F.
        CHECK(get(d, id, "workspace//a/./b/c/../c/deep.txt").raw == "deep");
        CHECK(put(d, id, "workspace/sp%20ace%C3%A9.txt", "x").status == 200);
        CHECK(sh(d.http, id, "cat '/workspace/sp ace\xC3\xA9.txt'") == "x");
        CHECK(put(d, id, "workspace/a%2Fb", "y").status == 200);
        CHECK(sh(d.http, id, "cat '/workspace/a%2Fb'") == "y");
    }

    TEST_CASE("a 32 MiB random file round-trips byte for byte; 32 MiB + 1 is 413") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        std::string data = randomBytes(kLimit, 42);
        auto w = put(d, id, "workspace/big.bin", data);
        CHECK(w.status == 200);
        auto r = get(d, id, "workspace/big.bin");
        CHECK(r.status == 200);
        CHECK(r.raw.size() == data.size());
        CHECK(r.raw == data);
        CHECK(sh(d.http, id, "stat -c %s /workspace/big.bin") == std::to_string(kLimit) + "\n");

        std::string over = data + "!";
        auto big = put(d, id, "workspace/huge.bin", over);
        checkBridgeError(big, 413, "payload_too_large",
                         "payload too large: 33554433 bytes exceeds the 33554432-byte limit");
        CHECK_FALSE(pathExists(d.workspace(id) + "/huge.bin"));
        // The connection (or a new one) still works afterwards.
        CHECK(get(d, id, "workspace/big.bin").raw.size() == kLimit);
    }

    TEST_CASE("GET errors: missing, directory, empty path") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        checkBridgeError(get(d, id, "workspace/missing.txt"), 404, "workspace_read_not_found",
                         "File not found: /workspace/missing.txt");
        checkBridgeError(get(d, id, "workspace/no/such/dir/x"), 404, "workspace_read_not_found",
                         "File not found: /workspace/no/such/dir/x");
        sh(d.http, id, "mkdir -p /workspace/dir; echo x > /workspace/plain");
        checkBridgeError(get(d, id, "workspace/dir"), 404, "workspace_read_not_found",
                         "File not found: /workspace/dir");
        checkBridgeError(get(d, id, "workspace"), 404, "workspace_read_not_found",
                         "File not found: /workspace");
        checkBridgeError(get(d, id, "workspace/plain/below"), 404, "workspace_read_not_found",
                         "File not found: /workspace/plain/below");
        // The resolved path is what the message names.
        checkBridgeError(get(d, id, "workspace/a/../missing"), 404, "workspace_read_not_found",
                         "File not found: /workspace/missing");
        const std::string empty = errorBody("file path must not be empty", "invalid_request");
        for (const auto* target : {"/file/", "/file"}) {
            CAPTURE(target);
            auto g = call(d.http, "GET", sandboxPath(id, target));
            CHECK(g.status == 400);
            CHECK(g.raw == empty);
            auto p = call(d.http, "PUT", sandboxPath(id, target), "hello");
            CHECK(p.status == 400);
            CHECK(p.raw == empty);
        }
        // Writing onto a directory fails as a write error.
        auto onDir = put(d, id, "workspace/dir", "x");
        CHECK(onDir.status == 502);
        CHECK(onDir.body["code"] == "workspace_archive_write_error");
        // Session-Id is validated on file routes (after the path check).
        const std::string badSession = errorBody("Invalid session ID format", "invalid_request");
        CHECK(get(d, id, "workspace/plain", {{"Session-Id", "bad/id"}}).raw == badSession);
        CHECK(put(d, id, "workspace/plain", "x", {{"Session-Id", "bad id"}}).raw == badSession);
        CHECK(get(d, id, "etc/passwd", {{"Session-Id", "bad/id"}}).status == 403);
        CHECK(get(d, id, "workspace/plain", {{"Session-Id", "file-sess"}}).raw == "x\n");
    }

    TEST_CASE("traversal: outside /workspace is 403, raw and percent-encoded dot segments") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        const std::string outside =
            errorBody("path must resolve to a location within /workspace", "invalid_request");
        // The client sends these targets verbatim (curl --path-as-is).
        for (const auto* path : {"workspace/../etc/passwd",      // R2: → /etc/passwd
                                 "workspace/%2e%2e/etc/passwd",  // %2e forms are dots too
                                 "workspace/%2E%2E/etc/passwd", "workspace/.%2e/etc/passwd",
                                 "workspace/a/../../etc/shadow",
                                 "etc/passwd",  // R3
                                 "main.py",     // R4
                                 "tmp/secret", "workspacefoo/bar", "WORKSPACE/x",
                                 "root/.ssh/authorized_keys"}) {  // W3
            CAPTURE(path);
            auto g = get(d, id, path);
            CHECK(g.status == 403);
            CHECK(g.raw == outside);
            auto p = put(d, id, path, "evil");
            CHECK(p.status == 403);
            CHECK(p.raw == outside);
        }
        // Dot segments that climb past /file leave the file route: a plain 404, never a file.
        for (const auto* path : {"workspace/../../etc/passwd", "workspace/%2e%2e/%2E%2E/etc/passwd",
                                 "../../../etc/passwd"}) {
            CAPTURE(path);
            checkNotFoundText(get(d, id, path));
            auto p = put(d, id, path, "evil");
            CHECK(p.status == 404);
        }
        // An encoded slash is not a separator: `..%2f` is a (missing) file name inside /workspace.
        checkBridgeError(get(d, id, "workspace/..%2f..%2fetc%2fpasswd"), 404,
                         "workspace_read_not_found",
                         "File not found: /workspace/..%2f..%2fetc%2fpasswd");
        // Nothing was written anywhere by the rejected PUTs.
        CHECK(sh(d.http, id, "ls -A /workspace | wc -l") == "0\n");
        CHECK(sh(d.http, id, "test -e /tmp/secret && echo yes || echo no") == "no\n");
    }

    TEST_CASE("symlinks inside the workspace cannot reach host files") {
        DaemonFixture d;
        TempDir host;
        std::string secret = host.path() + "/secret.txt";
        writeFile(secret, "host secret");
        std::string victim = host.path() + "/victim.txt";
        writeFile(victim, "untouched");
        std::string id = newSandbox(d.http);
        std::string otherId = newSandbox(d.http);
        sh(d.http, otherId, "echo content-of-other > /workspace/other.txt");
        std::string otherWs = d.workspace(otherId);

        sh(d.http, id,
           "cd /workspace && ln -s /etc/passwd passwd && ln -s " + secret + " secret && ln -s " +
               victim + " victim && ln -s ../../../../../../../../.." + secret +
               " relsecret && ln -s / root && ln -s " + host.path() + " hostdir && ln -s " +
               otherWs + "/other.txt other && ln -s " + otherWs +
               " otherws && ln -s loop1 loop2 && ln -s loop2 loop1");
        // GET through a link resolves inside the workspace (RESOLVE_IN_ROOT): no host file leaks.
        for (const auto* link : {"passwd", "secret", "relsecret", "other", "loop1"}) {
            CAPTURE(link);
            auto r = get(d, id, std::string("workspace/") + link);
            INFO(r.raw);
            CHECK(r.status >= 400);
            CHECK(r.raw.find("host secret") == std::string::npos);
            CHECK(r.raw.find("root:") == std::string::npos);
            CHECK(r.raw.find("content-of-other") == std::string::npos);
        }
        for (const auto* path : {"workspace/root/etc/passwd", "workspace/hostdir/secret.txt",
                                 "workspace/otherws/other.txt"}) {
            CAPTURE(path);
            auto r = get(d, id, path);
            CHECK(r.status == 404);
            CHECK(r.raw.find("host secret") == std::string::npos);
            CHECK(r.raw.find("root:") == std::string::npos);
        }
        // PUT through a link never writes outside the workspace.
        for (const auto* path :
             {"workspace/victim", "workspace/hostdir/victim.txt", "workspace/hostdir/new.txt",
              "workspace/otherws/other.txt", "workspace/root/tmp/evil.txt"}) {
            CAPTURE(path);
            auto w = put(d, id, path, "overwritten");
            INFO(w.raw);
            CHECK(w.status != 0);
        }
        CHECK(readFile(victim) == "untouched");
        CHECK_FALSE(pathExists(host.path() + "/new.txt"));
        CHECK(readFile(otherWs + "/other.txt") == "content-of-other\n");
        CHECK_FALSE(pathExists("/tmp/evil.txt"));
        // A link to a file inside the workspace works.
        sh(d.http, id, "echo inside > /workspace/real.txt; ln -s real.txt /workspace/rel-link");
        CHECK(get(d, id, "workspace/rel-link").raw == "inside\n");
        // An absolute link to a workspace file means the same file as inside the sandbox.
        sh(d.http, id,
           "mkdir -p /workspace/sub; ln -s /workspace/real.txt /workspace/sub/abs-link");
        CHECK(get(d, id, "workspace/sub/abs-link").raw == "inside\n");
        CHECK(put(d, id, "workspace/sub/abs-link", "via link").status == 200);
        CHECK(sh(d.http, id, "cat /workspace/real.txt") == "via link");
        // The daemon is fine afterwards.
        CHECK(call(d.http, "GET", "/health").status == 200);
    }

    TEST_CASE("special files (FIFO) in the workspace do not block the daemon") {
        DaemonFixture d;
        std::string id = newSandbox(d.http);
        sh(d.http, id, "mkfifo /workspace/fifo");
        bool done = finishesWithin(d, 10s, [&] {
            auto c = d.server.connect();
            auto r = call(c, "GET", fileUrl(id, "workspace/fifo"));
            CHECK(r.status >= 400);
            auto w = call(c, "PUT", fileUrl(id, "workspace/fifo"), "data");
            CHECK(w.status >= 400);
        });
        CHECK_MESSAGE(done, "GET/PUT of a FIFO hung the daemon");
        if (done) CHECK(call(d.http, "GET", "/health").status == 200);
    }

}  // TEST_SUITE
