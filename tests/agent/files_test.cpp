// File routes (§3.3, §9.7, §9.8): read/write in both encodings, MIME-based auto encoding, the
// read size limit, read/stream chunking, relative paths, mkdir/rename/move/delete/exists and
// list-files.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <set>

#include "agent/agent_test_util.hpp"
#include "core/base64.hpp"
#include "support/server_process.hpp"

using nlohmann::json;
using sandbox::testing::AgentFixture;
using namespace sandbox::testing::agent;
namespace fs = std::filesystem;

namespace {
const std::string kNoSession = "__DISABLE_SESSION__";
constexpr std::size_t kMaxRead = 32ull * 1024 * 1024;

std::string randomBytes(std::size_t n, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        std::uint64_t v = rng();
        std::memcpy(s.data() + i, &v, 8);
    }
    for (; i < n; ++i) s[i] = static_cast<char>(rng());
    return s;
}

std::set<std::string> keysOf(const json& j) {
    std::set<std::string> k;
    for (auto it = j.begin(); it != j.end(); ++it) k.insert(it.key());
    return k;
}

std::string decode64(const std::string& s) {
    auto d = sandbox::core::base64Decode(s);
    REQUIRE_MESSAGE(d.has_value(), "not base64");
    return *d;
}

/// The concatenated chunk payloads of a read/stream, decoded when binary.
std::string streamedBytes(const SseReply& r) {
    auto meta = r.ofType("metadata");
    REQUIRE(meta.size() == 1);
    std::string all;
    for (const auto& c : r.ofType("chunk")) {
        std::string d = c["data"];
        all += meta[0]["isBinary"] == true ? decode64(d) : d;
    }
    return all;
}
}  // namespace

TEST_CASE("files: write and read text") {
    AgentFixture a;
    const std::string p = a.workspace() + "/dir1/a.txt";
    auto w = post(a, "/api/write", {{"path", p}, {"content", "hello\nworld"}});
    REQUIRE(w.status == 200);
    CHECK(keysOf(w.body) == std::set<std::string>{"success", "path", "timestamp"});
    CHECK(w.body["success"] == true);
    CHECK(w.body["path"] == p);
    CHECK(isIsoTimestamp(w.body["timestamp"]));
    CHECK(readFile(p) == "hello\nworld");  // parent directory created

    auto r = post(a, "/api/read", {{"path", p}});
    REQUIRE(r.status == 200);
    CHECK(keysOf(r.body) == std::set<std::string>{"success", "path", "content", "timestamp",
                                                  "encoding", "isBinary", "mimeType", "size"});
    CHECK(r.body["success"] == true);
    CHECK(r.body["path"] == p);
    CHECK(r.body["content"] == "hello\nworld");
    CHECK(r.body["encoding"] == "utf-8");
    CHECK(r.body["isBinary"] == false);
    CHECK(r.body["mimeType"] == "text/plain");
    CHECK(r.body["size"].is_number_integer());
    CHECK(r.body["size"] == 11);
    CHECK(isIsoTimestamp(r.body["timestamp"]));

    // Multibyte text round trips; size counts bytes.
    const std::string text = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x80\n\ttab \"quotes\" \\ back";
    REQUIRE(post(a, "/api/write", {{"path", p}, {"content", text}}).status == 200);
    r = post(a, "/api/read", {{"path", p}});
    CHECK(r.body["content"] == text);
    CHECK(r.body["size"] == text.size());

    // Overwrite truncates.
    REQUIRE(post(a, "/api/write", {{"path", p}, {"content", "s"}}).status == 200);
    CHECK(readFile(p) == "s");
    // Any encoding other than base64 writes the string as UTF-8.
    for (const char* enc : {"utf-8", "utf8", "hex", "latin1"}) {
        REQUIRE(
            post(a, "/api/write", {{"path", p}, {"content", "as-is"}, {"encoding", enc}}).status ==
            200);
        CHECK(readFile(p) == "as-is");
    }
    // Forced base64 on a text file: isBinary follows the encoding.
    r = post(a, "/api/read", {{"path", p}, {"encoding", "base64"}});
    CHECK(r.body["encoding"] == "base64");
    CHECK(r.body["isBinary"] == true);
    CHECK(r.body["mimeType"] == "text/plain");
    CHECK(decode64(r.body["content"]) == "as-is");
    // Unknown read encodings mean auto.
    CHECK(post(a, "/api/read", {{"path", p}, {"encoding", "latin1"}}).body["encoding"] == "utf-8");
    CHECK(post(a, "/api/read", {{"path", p}, {"encoding", "utf8"}}).body["encoding"] == "utf-8");

    // Existing mode bits are kept; an empty write makes an empty file.
    ::chmod(p.c_str(), 0750);
    REQUIRE(post(a, "/api/write", {{"path", p}, {"content", ""}}).status == 200);
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0750);
    CHECK(st.st_size == 0);
    r = post(a, "/api/read", {{"path", p}});
    CHECK(r.body["content"] == "");
    CHECK(r.body["size"] == 0);
}

TEST_CASE("files: base64 round trip of all 256 byte values") {
    AgentFixture a;
    std::string bytes;
    for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
    bytes += bytes;  // twice, so every value also follows every position mod 3
    const std::string p = a.workspace() + "/all.bin";
    const std::string b64 = sandbox::core::base64Encode(bytes);
    auto w = post(a, "/api/write", {{"path", p}, {"content", b64}, {"encoding", "base64"}});
    REQUIRE(w.status == 200);
    CHECK(readFile(p) == bytes);

    auto r = post(a, "/api/read", {{"path", p}});
    REQUIRE(r.status == 200);
    CHECK(r.body["encoding"] == "base64");
    CHECK(r.body["isBinary"] == true);
    CHECK(r.body["mimeType"].is_string());  // libmagic's guess (it says image/x-tga here)
    CHECK(r.body["size"] == bytes.size());
    CHECK(r.body["content"] == b64);
    CHECK(post(a, "/api/read", {{"path", p}, {"encoding", "base64"}}).body["content"] == b64);

    // Forced utf-8 on binary content: invalid sequences become U+FFFD, the JSON stays valid.
    r = post(a, "/api/read", {{"path", p}, {"encoding", "utf-8"}});
    REQUIRE(r.status == 200);
    CHECK(r.body["encoding"] == "utf-8");
    CHECK(r.body["isBinary"] == false);
    CHECK(r.body["content"].get<std::string>().find("\xEF\xBF\xBD") != std::string::npos);

    // Padding variants and the empty string.
    for (const std::string& s :
         {std::string(""), std::string("a"), std::string("ab"), std::string("abc")}) {
        REQUIRE(
            post(a, "/api/write",
                 {{"path", p}, {"content", sandbox::core::base64Encode(s)}, {"encoding", "base64"}})
                .status == 200);
        CHECK(readFile(p) == s);
    }
}

TEST_CASE("files: automatic encoding by MIME type") {
    AgentFixture a;
    const std::string ws = a.workspace();
    writeFile(ws + "/notes.txt", "plain text\n");
    writeFile(ws + "/data.json", "{\"a\":1}");
    writeFile(ws + "/page.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    writeFile(ws + "/image.png", "\x89PNG\r\n\x1a\n" + randomBytes(500, 1));
    writeFile(ws + "/blob.bin", randomBytes(4096, 2));
    writeFile(ws + "/noext-binary", randomBytes(4096, 3));
    writeFile(ws + "/README", "Just some words in a file\nwithout any extension.\n");
    writeFile(ws + "/script", "#!/bin/sh\necho hi\n");
    writeFile(ws + "/empty", "");

    struct Case {
        const char* name;
        const char* mime;  // nullptr: any
        bool binary;
    };
    for (const Case& c :
         {Case{"notes.txt", "text/plain", false}, Case{"data.json", "application/json", false},
          Case{"page.svg", "image/svg+xml", false}, Case{"image.png", "image/png", true},
          Case{"blob.bin", "application/octet-stream", true},
          Case{"noext-binary", "application/octet-stream", true},
          Case{"README", "text/plain", false}, Case{"script", nullptr, false},
          Case{"empty", nullptr, false}}) {
        CAPTURE(c.name);
        auto r = post(a, "/api/read", {{"path", ws + "/" + c.name}});
        REQUIRE(r.status == 200);
        if (c.mime) CHECK(r.body["mimeType"] == c.mime);
        CHECK(r.body["isBinary"] == c.binary);
        CHECK(r.body["encoding"] == (c.binary ? "base64" : "utf-8"));
        std::string content = r.body["content"];
        CHECK((c.binary ? decode64(content) : content) == readFile(ws + "/" + c.name));

        // read/stream classifies the same way.
        auto s = stream(a.http, "/api/read/stream", {{"path", ws + "/" + c.name}});
        auto meta = s.ofType("metadata");
        REQUIRE(meta.size() == 1);
        CHECK(meta[0]["mimeType"] == r.body["mimeType"]);
        CHECK(meta[0]["isBinary"] == c.binary);
        CHECK(meta[0]["encoding"] == (c.binary ? "base64" : "utf-8"));
    }
}

TEST_CASE("files: 32 MiB limit of /api/read; a 32 MiB random file round trips") {
    AgentFixture a;
    const std::string p = a.workspace() + "/random32.dat";
    const std::string bytes = randomBytes(kMaxRead, 42);  // exactly the limit
    auto w = post(
        a, "/api/write",
        {{"path", p}, {"content", sandbox::core::base64Encode(bytes)}, {"encoding", "base64"}});
    REQUIRE(w.status == 200);
    CHECK(fs::file_size(p) == kMaxRead);

    auto r = post(a, "/api/read", {{"path", p}, {"encoding", "base64"}});
    REQUIRE(r.status == 200);
    CHECK(r.body["size"] == kMaxRead);
    CHECK(decode64(r.body["content"]) == bytes);

    // The same file through read/stream.
    auto s = stream(a.http, "/api/read/stream", {{"path", p}});
    REQUIRE(s.status == 200);
    CHECK(s.ofType("chunk").size() == (kMaxRead + 65534) / 65535);
    CHECK(streamedBytes(s) == bytes);
    CHECK(s.events.back()["bytesRead"] == kMaxRead);

    // One byte more: 413 with the sizes (created sparse, directly in the workspace).
    const std::string big = a.workspace() + "/big.bin";
    { std::ofstream(big).put('\0'); }
    fs::resize_file(big, kMaxRead + 1);
    auto e = post(a, "/api/read", {{"path", big}});
    checkError(e, 413, "FILE_TOO_LARGE");
    CHECK(e.body["context"]["path"] == big);
    CHECK(e.body["context"]["operation"] == "file.read");
    CHECK(e.body["context"]["actualSize"] == kMaxRead + 1);
    CHECK(e.body["context"]["maxSize"] == kMaxRead);
    CHECK(e.body["operation"] == "file.read");

    // ... but it streams fine (no limit there).
    s = stream(a.http, "/api/read/stream", {{"path", big}});
    REQUIRE(s.status == 200);
    CHECK(s.types().front() == "metadata");
    CHECK(s.types().back() == "complete");
    CHECK(s.ofType("metadata")[0]["size"] == kMaxRead + 1);
    CHECK(s.events.back()["bytesRead"] == kMaxRead + 1);
    std::string got = streamedBytes(s);
    CHECK(got.size() == kMaxRead + 1);
    CHECK(got.find_first_not_of('\0') == std::string::npos);
}

TEST_CASE("files: read/stream events and chunking") {
    AgentFixture a;
    const std::string ws = a.workspace();
    // Text: 65535-byte raw chunks; a multibyte character cut by a chunk boundary is completed
    // by the next chunk.
    const std::string text =
        std::string(65534, 'a') + "\xC3\xA9" + std::string(65533, 'b') + "\xE2\x82\xAC" + "tail\n";
    writeFile(ws + "/split.txt", text);
    auto s = stream(a.http, "/api/read/stream", {{"path", ws + "/split.txt"}});
    REQUIRE(s.status == 200);
    CHECK(s.contentType == "text/event-stream");
    CHECK(s.types() == std::vector<std::string>{"metadata", "chunk", "chunk", "chunk", "complete"});
    const json& meta = s.events[0];
    CHECK(keysOf(meta) ==
          std::set<std::string>{"type", "mimeType", "size", "isBinary", "encoding"});
    CHECK(meta["mimeType"] == "text/plain");
    CHECK(meta["size"] == text.size());
    CHECK(meta["isBinary"] == false);
    CHECK(meta["encoding"] == "utf-8");
    REQUIRE(s.events.size() == 5);
    CHECK(keysOf(s.events[1]) == std::set<std::string>{"type", "data"});
    CHECK(s.events[1]["data"] == std::string(65534, 'a'));
    CHECK(s.events[2]["data"] == "\xC3\xA9" + std::string(65533, 'b'));
    CHECK(s.events[3]["data"] ==
          "\xE2\x82\xAC"
          "tail\n");
    CHECK(keysOf(s.events[4]) == std::set<std::string>{"type", "bytesRead"});
    CHECK(s.events[4]["bytesRead"] == text.size());
    CHECK(s.raw.find("\xEF\xBF\xBD") == std::string::npos);

    // Binary: base64 of 65535 raw bytes (87380 characters) per chunk.
    const std::string bin = randomBytes(200000, 7);
    writeFile(ws + "/r.bin", bin);
    s = stream(a.http, "/api/read/stream", {{"path", ws + "/r.bin"}});
    auto chunks = s.ofType("chunk");
    REQUIRE(chunks.size() == 4);
    for (int i = 0; i < 3; ++i) CHECK(chunks[i]["data"].get<std::string>().size() == 87380);
    CHECK(decode64(chunks[3]["data"]).size() == 200000 - 3 * 65535);
    CHECK(streamedBytes(s) == bin);
    CHECK(s.events.back()["bytesRead"] == 200000);

    // Exact multiples: no empty trailing chunk. Empty file: no chunk at all.
    writeFile(ws + "/two.txt", std::string(2 * 65535, 'z'));
    s = stream(a.http, "/api/read/stream", {{"path", ws + "/two.txt"}});
    CHECK(s.types() == std::vector<std::string>{"metadata", "chunk", "chunk", "complete"});
    writeFile(ws + "/zero.txt", "");
    s = stream(a.http, "/api/read/stream", {{"path", ws + "/zero.txt"}});
    CHECK(s.types() == std::vector<std::string>{"metadata", "complete"});
    CHECK(s.events.back()["bytesRead"] == 0);

    // A small file: the reference's observed example.
    writeFile(ws + "/small.txt", "hello\nworld");
    s = stream(a.http, "/api/read/stream", {{"path", ws + "/small.txt"}});
    CHECK(s.raw ==
          "data: {\"type\":\"metadata\",\"mimeType\":\"text/plain\",\"size\":11,\"isBinary\":false,"
          "\"encoding\":\"utf-8\"}\n\n"
          "data: {\"type\":\"chunk\",\"data\":\"hello\\nworld\"}\n\n"
          "data: {\"type\":\"complete\",\"bytesRead\":11}\n\n");
}

TEST_CASE("files: read/stream failures are a single error event with HTTP 200") {
    AgentFixture a;
    const std::string missing = a.workspace() + "/missing";
    auto s = stream(a.http, "/api/read/stream", {{"path", missing}});
    CHECK(s.status == 200);
    CHECK(s.contentType == "text/event-stream");
    REQUIRE(s.events.size() == 1);
    CHECK(s.events[0] == json{{"type", "error"}, {"error", "File not found: " + missing}});

    s = stream(a.http, "/api/read/stream", {{"path", ""}});
    CHECK(s.status == 200);
    REQUIRE(s.events.size() == 1);
    CHECK(s.events[0] ==
          json{{"type", "error"},
               {"error", "Invalid path format for '': Path must be a non-empty string"}});

    for (const json& body : {json{{"path", a.workspace()}}, json::object(), json{{"path", 5}}}) {
        CAPTURE(body.dump());
        s = stream(a.http, "/api/read/stream", body);
        CHECK(s.status == 200);
        REQUIRE(s.events.size() == 1);
        CHECK(s.events[0]["type"] == "error");
        CHECK(s.events[0]["error"].is_string());
    }
    // A NUL in the path: the whole message, as the reference sends it.
    const std::string nul("/tmp/a\0b", 8);
    s = stream(a.http, "/api/read/stream", {{"path", nul}});
    REQUIRE(s.events.size() == 1);
    CHECK(s.events[0]["error"] ==
          "Invalid path format for '" + nul + "': Path contains null bytes");

    // Failures leak no descriptors in the agent (a directory is opened before it is refused).
    auto fdCount = [&] {
        std::size_t n = 0;
        for ([[maybe_unused]] const auto& e :
             fs::directory_iterator("/proc/" + std::to_string(a.server.pid()) + "/fd"))
            ++n;
        return n;
    };
    std::size_t before = fdCount();
    for (int i = 0; i < 20; ++i) {
        stream(a.http, "/api/read/stream", {{"path", a.workspace()}});
        post(a, "/api/read", {{"path", a.workspace()}});
        post(a, "/api/read", {{"path", missing}});
    }
    CHECK(fdCount() == before);

    auto raw = a.http.request("POST", "/api/read/stream", "{garbage");
    CHECK(raw.status == 200);
    CHECK(raw.body.rfind("data: {\"type\":\"error\"", 0) == 0);
    // The connection is still usable.
    CHECK(post(a, "/api/exists", {{"path", missing}}).status == 200);
}

TEST_CASE("files: relative paths resolve against the session's current directory") {
    AgentFixture a;
    const std::string ws = a.workspace();
    exec(a, "mkdir -p sub && cd sub", std::string("rel"));

    auto w =
        post(a, "/api/write", {{"path", "f.txt"}, {"content", "in sub"}, {"sessionId", "rel"}});
    REQUIRE(w.status == 200);
    CHECK(w.body["path"] == "f.txt");
    CHECK(readFile(ws + "/sub/f.txt") == "in sub");
    auto r = post(a, "/api/read", {{"path", "f.txt"}, {"sessionId", "rel"}});
    CHECK(r.body["content"] == "in sub");
    CHECK(r.body["path"] == "f.txt");
    auto s = stream(a.http, "/api/read/stream", {{"path", "./f.txt"}, {"sessionId", "rel"}});
    CHECK(s.joined("chunk") == "in sub");
    CHECK(post(a, "/api/exists", {{"path", "f.txt"}, {"sessionId", "rel"}}).body["exists"] == true);
    // ".." is normalised.
    REQUIRE(
        post(a, "/api/write", {{"path", "../top.txt"}, {"content", "top"}, {"sessionId", "rel"}})
            .status == 200);
    CHECK(readFile(ws + "/top.txt") == "top");
    // mkdir, list, rename, move, delete.
    REQUIRE(post(a, "/api/mkdir", {{"path", "nd/x"}, {"recursive", true}, {"sessionId", "rel"}})
                .status == 200);
    CHECK(fs::is_directory(ws + "/sub/nd/x"));
    auto l = post(a, "/api/list-files", {{"path", "."}, {"sessionId", "rel"}});
    REQUIRE(l.status == 200);
    std::set<std::string> names;
    for (const auto& f : l.body["files"]) names.insert(f["name"].get<std::string>());
    CHECK(names == std::set<std::string>{"f.txt", "nd"});
    REQUIRE(
        post(a, "/api/rename", {{"oldPath", "f.txt"}, {"newPath", "g.txt"}, {"sessionId", "rel"}})
            .status == 200);
    CHECK(pathExists(ws + "/sub/g.txt"));
    REQUIRE(post(a, "/api/move",
                 {{"sourcePath", "g.txt"}, {"destinationPath", "nd"}, {"sessionId", "rel"}})
                .status == 200);
    CHECK(pathExists(ws + "/sub/nd/g.txt"));
    REQUIRE(post(a, "/api/delete", {{"path", "nd/g.txt"}, {"sessionId", "rel"}}).status == 200);
    CHECK_FALSE(pathExists(ws + "/sub/nd/g.txt"));

    // The default session: its own current directory.
    exec(a, "mkdir -p dsub && cd dsub");
    REQUIRE(post(a, "/api/write", {{"path", "d.txt"}, {"content", "d"}}).status == 200);
    CHECK(readFile(ws + "/dsub/d.txt") == "d");
    // Sessionless: the workspace.
    REQUIRE(post(a, "/api/write", {{"path", "n.txt"}, {"content", "n"}, {"sessionId", kNoSession}})
                .status == 200);
    CHECK(readFile(ws + "/n.txt") == "n");
    CHECK(post(a, "/api/read", {{"path", "n.txt"}, {"sessionId", kNoSession}}).body["content"] ==
          "n");
    // Absolute paths ignore the session.
    CHECK(post(a, "/api/read", {{"path", ws + "/top.txt"}, {"sessionId", "rel"}}).body["content"] ==
          "top");
}

TEST_CASE("files: mkdir") {
    AgentFixture a;
    const std::string ws = a.workspace();
    auto r = post(a, "/api/mkdir", {{"path", ws + "/m1"}});
    REQUIRE(r.status == 200);
    CHECK(keysOf(r.body) == std::set<std::string>{"success", "path", "recursive", "timestamp"});
    CHECK(r.body["path"] == ws + "/m1");
    CHECK(r.body["recursive"] == false);
    CHECK(fs::is_directory(ws + "/m1"));

    r = post(a, "/api/mkdir", {{"path", ws + "/m2/a/b"}, {"recursive", true}});
    REQUIRE(r.status == 200);
    CHECK(r.body["recursive"] == true);
    CHECK(fs::is_directory(ws + "/m2/a/b"));
    // recursive on an existing directory is fine.
    CHECK(post(a, "/api/mkdir", {{"path", ws + "/m2/a"}, {"recursive", true}}).status == 200);

    // Errors: existing directory without recursive, missing parent, a file in the way.
    r = post(a, "/api/mkdir", {{"path", ws + "/m1"}});
    checkError(r, 409, "FILE_EXISTS");
    CHECK(r.body["context"]["path"] == ws + "/m1");
    CHECK(r.body["context"]["options"]["recursive"] == false);
    CHECK(r.body["context"]["stderr"].get<std::string>().find("File exists") != std::string::npos);
    CHECK(post(a, "/api/mkdir", {{"path", ws + "/nope/x"}}).status >= 400);
    writeFile(ws + "/afile", "x");
    CHECK(post(a, "/api/mkdir", {{"path", ws + "/afile"}, {"recursive", true}}).status >= 400);
    CHECK(post(a, "/api/mkdir", {{"path", ws + "/afile/sub"}, {"recursive", true}}).status >= 400);
    checkValidation(post(a, "/api/mkdir", {{"path", ws + "/m3"}, {"recursive", "yes"}}),
                    "INVALID_TYPE");
}

TEST_CASE("files: rename and move") {
    AgentFixture a;
    const std::string ws = a.workspace();
    writeFile(ws + "/old.txt", "content");
    auto r = post(a, "/api/rename", {{"oldPath", ws + "/old.txt"}, {"newPath", ws + "/new.txt"}});
    REQUIRE(r.status == 200);
    CHECK(keysOf(r.body) == std::set<std::string>{"success", "path", "newPath", "timestamp"});
    CHECK(r.body["path"] == ws + "/old.txt");
    CHECK(r.body["newPath"] == ws + "/new.txt");
    CHECK_FALSE(pathExists(ws + "/old.txt"));
    CHECK(readFile(ws + "/new.txt") == "content");

    // Directories rename too; a missing source is 404.
    fs::create_directories(ws + "/d1/inner");
    CHECK(post(a, "/api/rename", {{"oldPath", ws + "/d1"}, {"newPath", ws + "/d2"}}).status == 200);
    CHECK(fs::is_directory(ws + "/d2/inner"));
    r = post(a, "/api/rename", {{"oldPath", ws + "/ghost"}, {"newPath", ws + "/x"}});
    checkError(r, 404, "FILE_NOT_FOUND");
    CHECK(r.body["message"] == "Source file not found: " + ws + "/ghost");
    CHECK(r.body["context"]["operation"] == "file.rename");

    // Move into an existing directory puts the file inside it.
    fs::create_directories(ws + "/target");
    r = post(a, "/api/move",
             {{"sourcePath", ws + "/new.txt"}, {"destinationPath", ws + "/target"}});
    REQUIRE(r.status == 200);
    CHECK(r.body["path"] == ws + "/new.txt");
    CHECK(r.body["newPath"] == ws + "/target");
    CHECK(readFile(ws + "/target/new.txt") == "content");
    // Move to a new name; over an existing file (replaced).
    writeFile(ws + "/other.txt", "other");
    CHECK(post(a, "/api/move",
               {{"sourcePath", ws + "/target/new.txt"}, {"destinationPath", ws + "/other.txt"}})
              .status == 200);
    CHECK(readFile(ws + "/other.txt") == "content");
    r = post(a, "/api/move", {{"sourcePath", ws + "/ghost"}, {"destinationPath", ws + "/x"}});
    checkError(r, 404, "FILE_NOT_FOUND");
    CHECK(r.body["context"]["operation"] == "file.move");
    // A destination in a missing directory fails.
    CHECK(post(a, "/api/move",
               {{"sourcePath", ws + "/other.txt"}, {"destinationPath", ws + "/no/dir/x"}})
              .status >= 400);
    CHECK(pathExists(ws + "/other.txt"));

    checkValidation(post(a, "/api/rename", {{"oldPath", ws + "/other.txt"}}), "REQUIRED");
    checkValidation(post(a, "/api/move", {{"destinationPath", ws + "/x"}}), "REQUIRED");
    checkValidation(post(a, "/api/rename", {{"oldPath", ""}, {"newPath", ws + "/x"}}),
                    "INVALID_PATH");
    checkValidation(
        post(a, "/api/move", {{"sourcePath", ws + "/other.txt"}, {"destinationPath", ""}}),
        "INVALID_PATH");
}

TEST_CASE("files: delete") {
    AgentFixture a;
    const std::string ws = a.workspace();
    writeFile(ws + "/del.txt", "x");
    auto r = post(a, "/api/delete", {{"path", ws + "/del.txt"}});
    REQUIRE(r.status == 200);
    CHECK(keysOf(r.body) == std::set<std::string>{"success", "path", "timestamp"});
    CHECK(r.body["path"] == ws + "/del.txt");
    CHECK_FALSE(pathExists(ws + "/del.txt"));

    r = post(a, "/api/delete", {{"path", ws + "/del.txt"}});
    checkError(r, 404, "FILE_NOT_FOUND");
    CHECK(r.body["context"]["path"] == ws + "/del.txt");

    fs::create_directories(ws + "/adir");
    r = post(a, "/api/delete", {{"path", ws + "/adir"}});
    checkError(r, 400, "IS_DIRECTORY");
    CHECK(r.body["message"] == "Cannot delete directory with deleteFile() at '" + ws +
                                   "/adir'. Use exec('rm -rf <path>') instead.");
    CHECK(fs::is_directory(ws + "/adir"));

    // A symlink is removed itself, not its target; a broken one can be removed.
    writeFile(ws + "/target.txt", "t");
    fs::create_symlink(ws + "/target.txt", ws + "/link");
    fs::create_symlink(ws + "/nowhere", ws + "/broken");
    CHECK(post(a, "/api/delete", {{"path", ws + "/link"}}).status == 200);
    CHECK_FALSE(pathExists(ws + "/link"));
    CHECK(readFile(ws + "/target.txt") == "t");
    CHECK(post(a, "/api/delete", {{"path", ws + "/broken"}}).status == 200);
    CHECK_FALSE(pathExists(ws + "/broken"));
}

TEST_CASE("files: exists") {
    AgentFixture a;
    const std::string ws = a.workspace();
    writeFile(ws + "/f", "x");
    fs::create_directories(ws + "/d");
    fs::create_symlink(ws + "/f", ws + "/good-link");
    fs::create_symlink(ws + "/nowhere", ws + "/broken-link");
    auto r = post(a, "/api/exists", {{"path", ws + "/f"}});
    REQUIRE(r.status == 200);
    CHECK(keysOf(r.body) == std::set<std::string>{"success", "path", "exists", "timestamp"});
    CHECK(r.body["path"] == ws + "/f");
    CHECK(r.body["exists"] == true);
    CHECK(post(a, "/api/exists", {{"path", ws + "/d"}}).body["exists"] == true);
    CHECK(post(a, "/api/exists", {{"path", ws + "/good-link"}}).body["exists"] == true);
    CHECK(post(a, "/api/exists", {{"path", ws + "/broken-link"}}).body["exists"] == false);
    CHECK(post(a, "/api/exists", {{"path", ws + "/missing"}}).body["exists"] == false);
    CHECK(post(a, "/api/exists", {{"path", ws + "/f/under-a-file"}}).body["exists"] == false);
    CHECK(post(a, "/api/exists", {{"path", "/"}}).body["exists"] == true);
}

TEST_CASE("files: list-files") {
    AgentFixture a;
    const std::string root = a.workspace() + "/lf";
    fs::create_directories(root + "/d");
    fs::create_directories(root + "/.hdir");
    writeFile(root + "/a.txt", "hello");
    writeFile(root + "/d/inner.txt", "inner");
    writeFile(root + "/.hidden", "h");
    writeFile(root + "/.hdir/visible.txt", "v");
    writeFile(root + "/run.sh", "#!/bin/sh\n");
    writeFile(root + "/private", "p");
    fs::create_symlink("a.txt", root + "/link");
    ::chmod((root + "/a.txt").c_str(), 0644);
    ::chmod((root + "/d").c_str(), 0755);
    ::chmod((root + "/run.sh").c_str(), 0755);
    ::chmod((root + "/private").c_str(), 0600);

    auto list = [&](bool recursive, bool hidden, const std::string& path) {
        auto r = post(
            a, "/api/list-files",
            {{"path", path}, {"options", {{"recursive", recursive}, {"includeHidden", hidden}}}});
        REQUIRE_MESSAGE(r.status == 200, r.raw);
        return r.body;
    };
    auto relPaths = [](const json& body) {
        std::set<std::string> s;
        for (const auto& f : body["files"]) s.insert(f["relativePath"].get<std::string>());
        return s;
    };

    json j = list(false, false, root);
    CHECK(keysOf(j) == std::set<std::string>{"success", "path", "files", "count", "timestamp"});
    CHECK(j["success"] == true);
    CHECK(j["path"] == root);
    CHECK(j["count"] == j["files"].size());
    CHECK(isIsoTimestamp(j["timestamp"]));
    CHECK(relPaths(j) == std::set<std::string>{"a.txt", "d", "link", "run.sh", "private"});
    // Options are optional.
    auto plain = post(a, "/api/list-files", {{"path", root}});
    REQUIRE(plain.status == 200);
    CHECK(relPaths(plain.body) == relPaths(j));

    CHECK(relPaths(list(false, true, root)) ==
          std::set<std::string>{"a.txt", "d", "link", "run.sh", "private", ".hidden", ".hdir"});
    // Hidden filtering is by basename only: files inside a hidden directory are still listed.
    CHECK(relPaths(list(true, false, root)) == std::set<std::string>{"a.txt", "d", "d/inner.txt",
                                                                     "link", "run.sh", "private",
                                                                     ".hdir/visible.txt"});
    CHECK(relPaths(list(true, true, root + "/")) ==
          std::set<std::string>{"a.txt", "d", "d/inner.txt", "link", "run.sh", "private", ".hidden",
                                ".hdir", ".hdir/visible.txt"});

    // FileInfo fields.
    const std::regex modified(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{10}$)");
    std::map<std::string, json> byRel;
    const json recursiveList = list(true, false, root);
    for (const auto& f : recursiveList["files"]) byRel[f["relativePath"].get<std::string>()] = f;
    for (const auto& [rel, f] : byRel) {
        CAPTURE(rel);
        CHECK(keysOf(f) == std::set<std::string>{"name", "absolutePath", "relativePath", "type",
                                                 "size", "modifiedAt", "mode", "permissions"});
        CHECK(std::regex_match(f["modifiedAt"].get<std::string>(), modified));
        CHECK(f["absolutePath"] == root + "/" + rel);
        CHECK(f["size"].is_number_integer());
        CHECK(keysOf(f["permissions"]) ==
              std::set<std::string>{"readable", "writable", "executable"});
    }
    const json& file = byRel["a.txt"];
    CHECK(file["name"] == "a.txt");
    CHECK(file["type"] == "file");
    CHECK(file["size"] == 5);
    CHECK(file["mode"] == "rw-r--r--");
    CHECK(file["permissions"] ==
          json{{"readable", true}, {"writable", true}, {"executable", false}});
    // modifiedAt is local time of the mtime, to the second.
    struct stat st {};
    REQUIRE(::stat((root + "/a.txt").c_str(), &st) == 0);
    std::tm tm{};
    localtime_r(&st.st_mtim.tv_sec, &tm);
    char prefix[32];
    std::strftime(prefix, sizeof prefix, "%Y-%m-%dT%H:%M:%S.", &tm);
    CHECK(file["modifiedAt"].get<std::string>().rfind(prefix, 0) == 0);

    CHECK(byRel["d"]["type"] == "directory");
    CHECK(byRel["d"]["mode"] == "rwxr-xr-x");
    CHECK(byRel["d"]["permissions"]["executable"] == true);
    CHECK(byRel["d/inner.txt"]["name"] == "inner.txt");
    CHECK(byRel["link"]["type"] == "symlink");
    CHECK(byRel["link"]["size"] == 5);  // the link's own length ("a.txt")
    CHECK(byRel["run.sh"]["mode"] == "rwxr-xr-x");
    CHECK(byRel["private"]["mode"] == "rw-------");
    CHECK(byRel["private"]["permissions"] ==
          json{{"readable", true}, {"writable", true}, {"executable", false}});

    // An empty directory; a relative path (against the default session's directory).
    fs::create_directories(a.workspace() + "/empty");
    j = list(false, false, a.workspace() + "/empty");
    CHECK(j["files"] == json::array());
    CHECK(j["count"] == 0);
    j = list(false, false, "lf/d");
    CHECK(j["path"] == "lf/d");
    CHECK(relPaths(j) == std::set<std::string>{"inner.txt"});

    // Errors.
    auto e = post(a, "/api/list-files", {{"path", root + "/a.txt"}});
    checkError(e, 400, "NOT_DIRECTORY");
    CHECK(e.body["message"] == "Path is not a directory: " + root + "/a.txt");
    e = post(a, "/api/list-files", {{"path", root + "/none"}});
    checkError(e, 404, "FILE_NOT_FOUND");
    CHECK(e.body["message"] == "Directory not found: " + root + "/none");
    checkValidation(post(a, "/api/list-files", {{"path", root}, {"options", "x"}}), "INVALID_TYPE");
    checkValidation(post(a, "/api/list-files", {{"path", root}, {"options", {{"recursive", 1}}}}),
                    "INVALID_TYPE");
}

TEST_CASE("files: write and read errors") {
    AgentFixture a;
    const std::string ws = a.workspace();
    auto r = post(a, "/api/read", {{"path", ws + "/missing.txt"}});
    checkError(r, 404, "FILE_NOT_FOUND");
    CHECK(r.body["message"] == "File not found: " + ws + "/missing.txt");
    CHECK(r.body["context"]["path"] == ws + "/missing.txt");
    CHECK(r.body["context"]["operation"] == "file.read");
    CHECK(r.body["operation"] == "file.read");
    CHECK(r.body["suggestion"].is_string());

    // A directory reads as not found.
    r = post(a, "/api/read", {{"path", ws}});
    checkError(r, 404, "FILE_NOT_FOUND");
    CHECK(r.body["message"] == "File not found: " + ws);

    // Writing onto a directory, or below a file, fails.
    fs::create_directories(ws + "/isdir");
    CHECK(post(a, "/api/write", {{"path", ws + "/isdir"}, {"content", "x"}}).status >= 400);
    writeFile(ws + "/plain", "p");
    CHECK(post(a, "/api/write", {{"path", ws + "/plain/child"}, {"content", "x"}}).status >= 400);
    CHECK(readFile(ws + "/plain") == "p");
}

TEST_CASE("files: a FIFO does not block the agent") {
    AgentFixture a;
    const std::string fifo = a.workspace() + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
    // Nobody writes or reads the FIFO: each request must still be answered (a blocking open
    // would hang the agent's only thread, and this connection would time out).
    a.http.setIoTimeout(std::chrono::seconds(10));
    auto r = post(a, "/api/read", {{"path", fifo}});
    CHECK(r.status > 0);
    auto s = stream(a.http, "/api/read/stream", {{"path", fifo}});
    CHECK(s.status == 200);
    CHECK(!s.events.empty());
    r = post(a, "/api/write", {{"path", fifo}, {"content", "x"}});
    CHECK(r.status >= 400);
    CHECK(post(a, "/api/exists", {{"path", fifo}}).body["exists"] == true);
    auto l = post(a, "/api/list-files", {{"path", a.workspace()}});
    REQUIRE(l.status == 200);
    CHECK(l.body["files"][0]["type"] == "other");
    CHECK(exec(a, "echo alive")["stdout"] == "alive");
}
