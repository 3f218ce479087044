// The file API: writeFile/readFile (encodings, MIME detection, sizes, 32 MiB), readFileStream,
// mkdir, deleteFile, renameFile, moveFile, listFiles, exists.
#include <algorithm>
#include <set>

#include "core/base64.hpp"
#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

constexpr std::size_t kMiB = 1024 * 1024;

TEST_CASE("writeFile and readFile round-trip UTF-8 text") {
    std::string d = freshDir("text");
    const auto& sb = shared();
    const std::string text = "Hello, sandbox! caf\xc3\xa9 \xe2\x9c\x93\nline 2\n";
    auto w = sb.writeFile(d + "/hello.txt", text);
    CHECK(w.success);
    CHECK(w.path == d + "/hello.txt");
    CHECK_FALSE(w.timestamp.empty());
    auto r = sb.readFile(d + "/hello.txt");
    CHECK(r.success);
    CHECK(r.content == text);
    CHECK(r.encoding == "utf-8");
    CHECK_FALSE(r.isBinary);
    CHECK(r.mimeType == "text/plain");
    CHECK(r.size == text.size());
    CHECK(r.bytes() == text);
    CHECK_FALSE(r.timestamp.empty());
    // Explicit encodings.
    auto u = sb.readFile(d + "/hello.txt", {.encoding = Encoding::Utf8});
    CHECK(u.content == text);
    CHECK(u.encoding == "utf-8");
    auto b = sb.readFile(d + "/hello.txt", {.encoding = Encoding::Base64});
    CHECK(b.encoding == "base64");
    CHECK(b.content == core::base64Encode(text));
    CHECK(b.bytes() == text);
    // Overwrite, and an empty file.
    sb.writeFile(d + "/hello.txt", "short");
    CHECK(sb.readFile(d + "/hello.txt").content == "short");
    sb.writeFile(d + "/empty.txt", "");
    auto e = sb.readFile(d + "/empty.txt");
    CHECK(e.content.empty());
    CHECK(e.size == 0);
}

TEST_CASE("relative paths resolve against the workspace") {
    auto sb = freshSandbox("rel");
    std::string name = uniqueName("rel") + ".txt";
    sb.writeFile(name, "relative");
    CHECK(sb.exists(ws() + "/" + name).exists);
    CHECK(sb.readFile(ws() + "/" + name).content == "relative");
    CHECK(sb.readFile(name).content == "relative");
    CHECK(sb.exists(name).exists);
}

TEST_CASE("base64 writes and reads every byte value") {
    std::string d = freshDir("b64");
    const auto& sb = shared();
    std::string bytes = allBytes(256 * 4);
    for (int v = 0; v < 256; ++v)
        REQUIRE(std::count(bytes.begin(), bytes.end(), static_cast<char>(v)) == 4);
    sb.writeFile(d + "/all.bin", core::base64Encode(bytes), {.encoding = Encoding::Base64});
    auto r = sb.readFile(d + "/all.bin", {.encoding = Encoding::Base64});
    CHECK(r.encoding == "base64");
    CHECK(r.isBinary);
    CHECK(r.size == bytes.size());
    CHECK(r.content == core::base64Encode(bytes));
    CHECK(r.bytes() == bytes);
    // Auto detects binary content by MIME type and answers in base64.
    auto a = sb.readFile(d + "/all.bin");
    CHECK(a.encoding == "base64");
    CHECK(a.isBinary);
    CHECK(a.bytes() == bytes);
    // The same bytes through a shell command: nothing was altered on the way in.
    CHECK(
        sb.exec("cksum < " + d + "/all.bin").stdoutText ==
        sb.exec("printf '%s' '" + core::base64Encode(bytes) + "' | base64 -d | cksum").stdoutText);
    // Invalid base64 is refused.
    CHECK_THROWS_AS(sb.writeFile(d + "/bad.bin", "not base64!!", {.encoding = Encoding::Base64}),
                    ValidationFailedError);
}

TEST_CASE("automatic encoding follows the MIME type") {
    std::string d = freshDir("mime");
    const auto& sb = shared();
    std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + allBytes(64);
    sb.writeFile(d + "/image.png", core::base64Encode(png), {.encoding = Encoding::Base64});
    auto p = sb.readFile(d + "/image.png");
    CHECK(p.mimeType == "image/png");
    CHECK(p.isBinary);
    CHECK(p.encoding == "base64");
    CHECK(p.bytes() == png);

    sb.writeFile(d + "/data.json", R"({"a":1})");
    auto j = sb.readFile(d + "/data.json");
    CHECK(j.mimeType == "application/json");
    CHECK_FALSE(j.isBinary);
    CHECK(j.encoding == "utf-8");
    CHECK(j.content == R"({"a":1})");

    // No extension: decided by the content.
    sb.writeFile(d + "/notes", "plain words\n");
    auto n = sb.readFile(d + "/notes");
    CHECK(n.mimeType.rfind("text/", 0) == 0);
    CHECK(n.encoding == "utf-8");
    CHECK(n.content == "plain words\n");
    std::string blob = allBytes(512, 7);
    sb.writeFile(d + "/blob", core::base64Encode(blob), {.encoding = Encoding::Base64});
    auto bl = sb.readFile(d + "/blob");
    CHECK(bl.isBinary);
    CHECK(bl.encoding == "base64");
    CHECK(bl.bytes() == blob);
    // A binary file read as UTF-8 is still answered (invalid bytes replaced), not refused.
    auto asText = sb.readFile(d + "/blob", {.encoding = Encoding::Utf8});
    CHECK(asText.encoding == "utf-8");
    CHECK_FALSE(asText.content.empty());
}

TEST_CASE(
    "32 MiB binary round trip; larger reads are FileTooLargeError where the transport limits "
    "them") {
    std::string d = freshDir("big");
    const auto& sb = shared();
    std::string bytes = allBytes(32 * kMiB, 3);
    sb.writeFile(d + "/big.bin", core::base64Encode(bytes), {.encoding = Encoding::Base64});
    auto r = sb.readFile(d + "/big.bin");
    CHECK(r.size == bytes.size());
    CHECK(r.isBinary);
    CHECK((r.bytes() == bytes));
    auto st = sb.readFileStream(d + "/big.bin");
    CHECK(st.metadata().size == bytes.size());
    CHECK((st.collect() == bytes));

    sb.exec("head -c " + std::to_string(32 * kMiB + 1) + " /dev/zero > " + d + "/huge.bin");
    if (isNarrow()) {
        // The bridge's file download has no size limit.
        CHECK(sb.readFile(d + "/huge.bin").size == 32 * kMiB + 1);
        // Its upload does.
        CHECK_THROWS_AS(sb.writeFile(d + "/up.bin", std::string(32 * kMiB + 1, 'x')),
                        FileTooLargeError);
    } else {
        try {
            sb.readFile(d + "/huge.bin");
            FAIL("no exception");
        } catch (const FileTooLargeError& e) {
            CHECK(e.code() == "FILE_TOO_LARGE");
            CHECK(e.httpStatus() == 413);
        }
    }
    // readFileStream has no limit.
    auto hs = sb.readFileStream(d + "/huge.bin");
    CHECK(hs.metadata().size == 32 * kMiB + 1);
    CHECK(hs.collect().size() == 32 * kMiB + 1);
    sb.deleteFile(d + "/huge.bin");
    sb.deleteFile(d + "/big.bin");
}

TEST_CASE("readFileStream: metadata, chunks, collect") {
    std::string d = freshDir("stream");
    const auto& sb = shared();
    std::string text;
    for (int i = 0; i < 20000; ++i) text += "line " + std::to_string(i) + " \xe2\x9c\x93\n";
    sb.writeFile(d + "/t.txt", text);
    {
        auto s = sb.readFileStream(d + "/t.txt");
        const auto& m = s.metadata();
        CHECK(m.mimeType == "text/plain");
        CHECK(m.size == text.size());
        CHECK_FALSE(m.isBinary);
        CHECK(m.encoding == "utf-8");
        std::string all;
        int chunks = 0;
        while (auto c = s.nextChunk()) {
            all += *c;
            ++chunks;
        }
        CHECK(chunks >= 1);
        CHECK(all == text);
        CHECK_FALSE(s.nextChunk());
    }
    std::string bytes = allBytes(300000, 5);
    sb.writeFile(d + "/b.bin", core::base64Encode(bytes), {.encoding = Encoding::Base64});
    {
        auto s = sb.readFileStream(d + "/b.bin");
        CHECK(s.metadata().isBinary);
        CHECK(s.metadata().encoding == "base64");
        CHECK(s.metadata().size == bytes.size());
        CHECK((s.collect() == bytes));
    }
    {
        // collect() without asking for the metadata first.
        auto s = sb.readFileStream(d + "/b.bin");
        CHECK((s.collect() == bytes));
    }
    sb.writeFile(d + "/e.txt", "");
    CHECK(sb.readFileStream(d + "/e.txt").collect().empty());
    // A missing file.
    CHECK_THROWS_AS(
        [&] {
            auto s = sb.readFileStream(d + "/missing.txt");
            s.collect();
        }(),
        FileNotFoundError);
}

TEST_CASE("mkdir, plain and recursive") {
    std::string d = freshDir("mkdir");
    const auto& sb = shared();
    auto r = sb.mkdir(d + "/one");
    CHECK(r.success);
    CHECK(r.path == d + "/one");
    CHECK(sb.exists(d + "/one").exists);
    CHECK_THROWS_AS(sb.mkdir(d + "/a/b/c"), FileNotFoundError);
    CHECK_FALSE(sb.exists(d + "/a").exists);
    sb.mkdir(d + "/a/b/c", {.recursive = true});
    CHECK(sb.exec("test -d " + d + "/a/b/c").exitCode == 0);
    CHECK_NOTHROW(sb.mkdir(d + "/a/b/c", {.recursive = true}));  // like mkdir -p
    CHECK_THROWS_AS(sb.mkdir(d + "/one"), FileExistsError);
}

TEST_CASE("deleteFile") {
    std::string d = freshDir("del");
    const auto& sb = shared();
    sb.writeFile(d + "/f.txt", "x");
    auto r = sb.deleteFile(d + "/f.txt");
    CHECK(r.success);
    CHECK(r.path == d + "/f.txt");
    CHECK_FALSE(sb.exists(d + "/f.txt").exists);
    try {
        sb.deleteFile(d + "/f.txt");
        FAIL("no exception");
    } catch (const FileNotFoundError& e) {
        CHECK(e.code() == "FILE_NOT_FOUND");
        CHECK(e.path() == d + "/f.txt");
    }
    sb.mkdir(d + "/dir");
    try {
        sb.deleteFile(d + "/dir");
        FAIL("no exception");
    } catch (const FileSystemError& e) {
        CHECK(e.code() == "IS_DIRECTORY");
    }
    CHECK(sb.exists(d + "/dir").exists);
}

TEST_CASE("renameFile and moveFile") {
    std::string d = freshDir("mv");
    const auto& sb = shared();
    sb.writeFile(d + "/a.txt", "content");
    auto r = sb.renameFile(d + "/a.txt", d + "/b.txt");
    CHECK(r.success);
    CHECK(r.path == d + "/a.txt");
    CHECK(r.newPath == d + "/b.txt");
    CHECK_FALSE(sb.exists(d + "/a.txt").exists);
    CHECK(sb.readFile(d + "/b.txt").content == "content");
    CHECK_THROWS_AS(sb.renameFile(d + "/a.txt", d + "/c.txt"), FileNotFoundError);

    sb.mkdir(d + "/sub");
    auto m = sb.moveFile(d + "/b.txt", d + "/sub/moved.txt");
    CHECK(m.newPath == d + "/sub/moved.txt");
    CHECK(sb.readFile(d + "/sub/moved.txt").content == "content");
    CHECK_FALSE(sb.exists(d + "/b.txt").exists);
    // Into an existing directory: keeps its name.
    sb.mkdir(d + "/into");
    sb.moveFile(d + "/sub/moved.txt", d + "/into");
    CHECK(sb.readFile(d + "/into/moved.txt").content == "content");
    // Directories move too.
    sb.moveFile(d + "/into", d + "/sub/into2");
    CHECK(sb.exists(d + "/sub/into2/moved.txt").exists);
    CHECK_THROWS_AS(sb.moveFile(d + "/nope", d + "/x"), FileNotFoundError);
}

TEST_CASE("moveFile and renameFile across filesystems (/tmp and the workspace), as mv does") {
    // The guide's own call: in a sandbox /tmp and /workspace are different filesystems, where
    // rename(2) fails with EXDEV. (Cloudflare's bridge addresses files in /workspace only.)
    if (isNarrow()) return;
    auto sb = freshSandbox("xdev");
    const std::string tmp = "/tmp/" + uniqueName("download");
    sb.writeFile(tmp + ".txt", "downloaded\n");
    auto m = sb.moveFile(tmp + ".txt", ws() + "/data.txt");
    CHECK(m.success);
    CHECK(sb.readFile(ws() + "/data.txt").content == "downloaded\n");
    CHECK_FALSE(sb.exists(tmp + ".txt").exists);
    // Back again with renameFile, keeping the file's mode.
    sb.exec("chmod 750 " + ws() + "/data.txt");
    sb.renameFile(ws() + "/data.txt", tmp + ".back");
    CHECK(sb.exec("stat -c %a " + tmp + ".back").stdoutText == inSession("750\n"));
    CHECK_FALSE(sb.exists(ws() + "/data.txt").exists);
    // A directory tree with a symlink, into an existing directory (keeps its name).
    sb.exec("mkdir -p " + tmp + "/tree/sub && printf x > " + tmp + "/tree/sub/f && ln -s sub/f " +
            tmp + "/tree/link");
    sb.mkdir(ws() + "/into");
    sb.moveFile(tmp + "/tree", ws() + "/into");
    CHECK(sb.readFile(ws() + "/into/tree/sub/f").bytes() == "x");
    CHECK(sb.exec("readlink " + ws() + "/into/tree/link").stdoutText == inSession("sub/f\n"));
    CHECK_FALSE(sb.exists(tmp + "/tree").exists);
    sb.exec("rm -rf " + tmp + " " + tmp + ".back");
    if (isAgent()) return;  // no read-only filesystem of the sandbox's own there
    // A move that cannot complete leaves the source as it was and no partial destination.
    sb.writeFile(ws() + "/keep.txt", "keep");
    CHECK_THROWS_AS(sb.moveFile(ws() + "/keep.txt", "/usr/keep.txt"), SandboxError);
    CHECK(sb.readFile(ws() + "/keep.txt").content == "keep");
    CHECK_FALSE(sb.exists("/usr/keep.txt").exists);
}

TEST_CASE("bytes that are not UTF-8 are written and read back exactly") {
    std::string d = freshDir("latin1");
    const auto& sb = shared();
    // A Windows-1252 CSV: "café;naïve;€5" with single-byte accents and the euro sign 0x80.
    const std::string csv =
        "name;price\ncaf\xe9;na\xefve;\x80"
        "5\n";
    auto w = sb.writeFile(d + "/prices.csv", csv);  // no base64 by the caller
    CHECK(w.success);
    CHECK(sb.exec("cksum < " + d + "/prices.csv").stdoutText ==
          sb.exec("printf 'name;price\\ncaf\\351;na\\357ve;\\2005\\n' | cksum").stdoutText);
    // The default read does not replace bytes: it answers them exactly, as base64.
    auto r = sb.readFile(d + "/prices.csv");
    CHECK(r.bytes() == csv);
    CHECK(r.encoding == "base64");
    CHECK(r.isBinary);
    auto st = sb.readFileStream(d + "/prices.csv");
    // (Cloudflare's bridge announces a stream's encoding from the name alone.)
    if (!isNarrow()) CHECK(st.metadata().isBinary);
    CHECK(st.collect() == csv);
    // An image's bytes, straight from memory.
    const std::string png = std::string("\x89PNG\r\n\x1a\n", 8) + allBytes(300, 5);
    sb.writeFile(d + "/image.png", png);
    CHECK(sb.readFile(d + "/image.png").bytes() == png);
    // Text that is UTF-8 still reads as text.
    sb.writeFile(d + "/ok.csv", "caf\xc3\xa9\n");
    CHECK(sb.readFile(d + "/ok.csv").encoding == "utf-8");
}

TEST_CASE("listFiles: FileInfo fields, recursive, includeHidden") {
    std::string d = freshDir("ls");
    const auto& sb = shared();
    sb.writeFile(d + "/a.txt", "12345");
    sb.mkdir(d + "/sub/deeper", {.recursive = true});
    sb.writeFile(d + "/sub/b.txt", "x");
    sb.writeFile(d + "/.hidden", "h");
    sb.mkdir(d + "/.hdir");
    sb.writeFile(d + "/.hdir/inner.txt", "i");
    sb.exec("chmod 750 " + d + "/sub && chmod 600 " + d + "/a.txt");

    // The relative paths, sorted and joined (the order of the entries is not specified).
    auto names = [](const ListFilesResult& r) {
        std::set<std::string> s;
        for (const auto& f : r.files) s.insert(f.relativePath);
        std::string out;
        for (const auto& n : s) out += (out.empty() ? "" : ",") + n;
        return out;
    };
    auto top = sb.listFiles(d);
    CHECK(top.success);
    CHECK(top.path == d);
    CHECK(names(top) == "a.txt,sub");
    CHECK(top.count == 2);
    CHECK_FALSE(top.timestamp.empty());
    for (const auto& f : top.files) {
        INFO(f.name);
        CHECK_FALSE(f.modifiedAt.empty());
        CHECK(f.modifiedAt.substr(0, 2) == "20");
        if (f.name == "a.txt") {
            CHECK(f.type == "file");
            CHECK(f.size == 5);
            CHECK(f.absolutePath == d + "/a.txt");
            CHECK(f.relativePath == "a.txt");
            CHECK(f.mode == "rw-------");
            CHECK(f.permissions.readable);
            CHECK(f.permissions.writable);
            CHECK_FALSE(f.permissions.executable);
        } else {
            CHECK(f.name == "sub");
            CHECK(f.type == "directory");
            CHECK(f.absolutePath == d + "/sub");
            CHECK(f.mode == "rwxr-x---");
            CHECK(f.permissions.executable);
        }
    }
    auto rec = sb.listFiles(d, {.recursive = true});
    // Hidden filtering is by name, as the reference's find -not -name '.*': a hidden directory
    // is not listed, the visible entries below it are.
    CHECK(names(rec) == ".hdir/inner.txt,a.txt,sub,sub/b.txt,sub/deeper");
    for (const auto& f : rec.files)
        if (f.relativePath == "sub/b.txt") {
            CHECK(f.name == "b.txt");
            CHECK(f.absolutePath == d + "/sub/b.txt");
        }
    auto hidden = sb.listFiles(d, {.includeHidden = true});
    CHECK(names(hidden) == ".hdir,.hidden,a.txt,sub");
    auto all = sb.listFiles(d, {.recursive = true, .includeHidden = true});
    CHECK(names(all) == ".hdir,.hdir/inner.txt,.hidden,a.txt,sub,sub/b.txt,sub/deeper");
    CHECK(all.count == 7);

    CHECK(sb.listFiles(d + "/sub/deeper").files.empty());
    CHECK_THROWS_AS(sb.listFiles(d + "/missing"), FileNotFoundError);
    try {
        sb.listFiles(d + "/a.txt");
        FAIL("no exception");
    } catch (const FileSystemError& e) {
        CHECK(e.code() == "NOT_DIRECTORY");
    }
}

TEST_CASE("exists") {
    std::string d = freshDir("ex");
    const auto& sb = shared();
    sb.writeFile(d + "/f", "x");
    auto f = sb.exists(d + "/f");
    CHECK(f.success);
    CHECK(f.exists);
    CHECK(f.path == d + "/f");
    CHECK(sb.exists(d).exists);
    CHECK_FALSE(sb.exists(d + "/nothing").exists);
    CHECK_FALSE(sb.exists(d + "/f/below").exists);
}

TEST_CASE("file names with spaces, quotes, shell syntax and non-ASCII characters") {
    std::string d = freshDir("names");
    const auto& sb = shared();
    const std::string base = "it's a \"file\" $(x) `y` ;&|<> \\ caf\xc3\xa9 +,=@:!.txt";
    const std::string name = d + "/" + base;
    sb.writeFile(name, "odd");
    CHECK(sb.readFile(name).content == "odd");
    CHECK(sb.readFileStream(name).collect() == "odd");
    CHECK(sb.exists(name).exists);
    sb.renameFile(name, name + ".2");
    REQUIRE(sb.listFiles(d).count == 1);
    CHECK(sb.listFiles(d).files.at(0).name == base + ".2");
    CHECK(sb.exec("cat " + d + "/*.2").stdoutText == "odd");
    sb.deleteFile(name + ".2");
    CHECK(sb.listFiles(d).files.empty());

    // '?', '#' and '%' cannot be addressed through the bridge's /file route.
    const std::string odd = d + "/100% sure?#1.txt";
    if (isNarrow()) {
        CHECK_THROWS_AS(sb.writeFile(odd, "x"), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.readFile(odd), UnsupportedOperationError);
        CHECK_THROWS_AS(sb.readFileStream(odd), UnsupportedOperationError);
        CHECK_FALSE(sb.exists(odd).exists);  // nothing was written anywhere
        CHECK(sb.listFiles(d).files.empty());
    } else {
        sb.writeFile(odd, "x");
        CHECK(sb.readFile(odd).content == "x");
        CHECK(sb.listFiles(d).files.at(0).name == "100% sure?#1.txt");
    }
}

}  // namespace
}  // namespace sandbox::testing::sdk
