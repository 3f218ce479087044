#pragma once
// The container API's messages: one definition per message with its JSON
// mapping, used by sandbox-agent to parse requests / render responses and by the SDK to build
// requests / read responses. Field names are spelled here and nowhere else.
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::core::wire {

/// The session id that selects sessionless execution.
inline constexpr std::string_view kNoSession = "__DISABLE_SESSION__";
/// The id used when a request names no session.
inline constexpr std::string_view kDefaultSession = "default";
/// Largest file /api/read returns whole (bigger files: 413, use /api/read/stream).
inline constexpr std::uint64_t kMaxReadSize = 32ull * 1024 * 1024;
/// Raw bytes per chunk event of /api/read/stream.
inline constexpr std::size_t kReadStreamChunk = 65535;

using EnvMap = std::map<std::string, std::optional<std::string>>;

// ---- sessions -----------------------------------------------------------------------------

/// POST /api/session/create
struct SessionCreateRequest {
    std::optional<std::string> id;
    std::map<std::string, std::string> env;
    std::optional<std::string> cwd;
    std::optional<std::int64_t> commandTimeoutMs;
    static SessionCreateRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// POST /api/session/delete
struct SessionDeleteRequest {
    std::string sessionId;
    static SessionDeleteRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

// ---- exec ---------------------------------------------------------------------------------

/// POST /api/execute and /api/execute/stream
struct ExecuteRequest {
    std::string command;
    std::optional<std::string> sessionId;
    std::optional<std::int64_t> timeoutMs;
    EnvMap env;
    std::optional<std::string> cwd;
    std::optional<std::string> origin;
    bool background = false;
    static ExecuteRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Success body of POST /api/execute (foreground).
struct ExecuteResponse {
    bool success = false;
    int exitCode = 0;
    std::string stdoutText;
    std::string stderrText;
    std::string command;
    std::int64_t duration = 0;
    std::string timestamp;
    std::optional<std::string> sessionId;
    static ExecuteResponse fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Success body of POST /api/execute {background:true} and POST /api/process/start.
struct ProcessStartedResponse {
    std::string processId;
    std::optional<std::int64_t> pid;
    std::string command;
    std::string timestamp;
    static ProcessStartedResponse fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// SSE events of /api/execute/stream, rendered as single-line JSON (`data: {...}`).
namespace exec_event {
std::string start(std::string_view command, std::string_view timestamp);
/// stdout/stderr event; `stream` is "stdout" or "stderr"; `data` must be valid UTF-8.
std::string output(std::string_view stream, std::string_view data, std::string_view timestamp);
std::string complete(std::optional<int> exitCode, std::string_view timestamp);
std::string error(std::string_view message, std::string_view timestamp);
}  // namespace exec_event

// ---- files --------------------------------------------------------------------------------

/// How /api/read encodes content.
enum class ReadEncoding { Auto, Utf8, Base64 };

/// POST /api/read and /api/read/stream
struct ReadRequest {
    std::string path;
    ReadEncoding encoding = ReadEncoding::Auto;
    std::optional<std::string> sessionId;
    static ReadRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Success body of POST /api/read.
struct ReadResponse {
    std::string path;
    std::string content;
    std::string encoding;  ///< "utf-8" or "base64"
    bool isBinary = false;
    std::string mimeType;
    std::uint64_t size = 0;
    std::string timestamp;
    static ReadResponse fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
    /// The same JSON as toJson().dump(), written directly (content may be tens of MB): the same
    /// keys in the same order and the same value, the same text except that DEL (0x7F) is
    /// escaped as \u007f (core::appendJsonString), where dump() writes it as is.
    std::string toJsonString() const;
};

/// POST /api/write
struct WriteRequest {
    std::string path;
    std::string content;
    std::optional<std::string> encoding;
    std::optional<std::string> sessionId;
    bool isBase64() const { return encoding && *encoding == "base64"; }
    static WriteRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// A request naming one path: /api/delete, /api/exists.
struct PathRequest {
    std::string path;
    std::optional<std::string> sessionId;
    static PathRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// /api/rename ({oldPath,newPath}) and /api/move ({sourcePath,destinationPath}).
struct MoveRequest {
    std::string from;
    std::string to;
    std::optional<std::string> sessionId;
    static MoveRequest fromRenameJson(const nlohmann::json& j);
    static MoveRequest fromMoveJson(const nlohmann::json& j);
    nlohmann::json toRenameJson() const;
    nlohmann::json toMoveJson() const;
};

/// POST /api/mkdir
struct MkdirRequest {
    std::string path;
    bool recursive = false;
    std::optional<std::string> sessionId;
    static MkdirRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// POST /api/list-files
struct ListFilesRequest {
    std::string path;
    bool recursive = false;
    bool includeHidden = false;
    std::optional<std::string> sessionId;
    static ListFilesRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// One entry of /api/list-files.
struct FileInfo {
    std::string name;
    std::string absolutePath;
    std::string relativePath;
    std::string type;  ///< "file", "directory", "symlink" or "other"
    std::uint64_t size = 0;
    std::string modifiedAt;
    std::string mode;  ///< "rwxr-xr-x"
    bool readable = false, writable = false, executable = false;
    static FileInfo fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// SSE events of /api/read/stream.
namespace read_event {
std::string metadata(std::string_view mimeType, std::uint64_t size, bool isBinary);
std::string chunk(std::string_view encodedData);
std::string complete(std::uint64_t bytesRead);
std::string error(std::string_view message);
}  // namespace read_event

/// `{"success":true, ...extra, "timestamp": now}` — the common success envelope.
nlohmann::json success(nlohmann::json extra = nlohmann::json::object());

}  // namespace sandbox::core::wire
