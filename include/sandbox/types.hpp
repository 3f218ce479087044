#pragma once
/// @file
/// Options and results of the Sandbox API. Names and fields follow the TypeScript SDK so its
/// documentation translates line by line; options are aggregates for designated initialisers:
/// `sb.exec("npm test", {.timeout = 30s, .cwd = "/workspace/app"})`.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

namespace sandbox {

/// Environment variables. What a std::nullopt value does depends on where it is given: in
/// setEnvVars() it unsets the variable; in the `env` of a command, a process or a new session
/// it is dropped, as the TypeScript SDK drops `undefined` (the variable keeps the value it has).
using EnvVars = std::map<std::string, std::optional<std::string>>;

/// Result of exec(): a non-zero exit is a result (success == false), not an exception.
struct ExecResult {
    bool success = false;                   ///< exitCode == 0
    int exitCode = 0;                       ///< the command's exit status
    std::string stdoutText;                 ///< everything it wrote to stdout
    std::string stderrText;                 ///< everything it wrote to stderr
    std::string command;                    ///< the command as given
    std::chrono::milliseconds duration{0};  ///< measured by the SDK
    std::string timestamp;                  ///< ISO-8601 start time
    std::optional<std::string> sessionId;   ///< absent for sessionless execution
};

/// Options of exec()/execStream(), in the order of the TypeScript docs' examples (`cwd` before
/// `env`): C++ designated initialisers must follow it (see docs/sdk.md).
struct ExecOptions {
    /// Stops the command after this long: exec() then throws CommandTimeoutError (with the
    /// output so far where the transport keeps it); an execStream() ends with exit code 124 and
    /// a last stderr line "Command timed out after Nms". The same on every transport.
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::string> cwd;  ///< per-command working directory
    EnvVars env;                     ///< per-command variables (do not persist)
    /// exec() only: use the streaming route and report output as it arrives through onOutput.
    bool stream = false;
    /// Called with ("stdout"|"stderr", chunk) as output arrives (requires stream = true).
    std::function<void(const std::string& stream, const std::string& data)> onOutput;
    /// Called with the result once the command finished.
    std::function<void(const ExecResult&)> onComplete;
    /// Called with the error before it is thrown.
    std::function<void(const std::exception&)> onError;
};

/// One event of execStream().
struct ExecEvent {
    enum class Type { Start, Stdout, Stderr, Complete, Error } type = Type::Start;
    std::string data;             ///< output chunk (Stdout/Stderr) or error message (Error)
    std::optional<int> exitCode;  ///< Complete
    std::string command;          ///< Start
    std::string timestamp;
};

/// The event as the container API's exec stream sends it: one line of JSON, such as
/// `{"type":"stdout","data":"hi\n","timestamp":"..."}`, ready to relay to a browser as
/// `"data: " + to_string(ev) + "\n\n"`. Output that is not UTF-8 has its bad bytes replaced.
std::string to_string(const ExecEvent& event);
/// The same as a JSON object (`nlohmann::json j = event;`).
void to_json(nlohmann::json& j, const ExecEvent& event);

/// File encodings of readFile()/writeFile().
enum class Encoding { Auto, Utf8, Base64 };

struct WriteFileOptions {
    /// Utf8 (the default): `content` is written byte for byte, whatever it holds (bytes that
    /// are not UTF-8 travel base64-encoded on their own). Base64: `content` is base64 text and
    /// is decoded to the bytes written.
    Encoding encoding = Encoding::Utf8;
};

struct ReadFileOptions {
    /// Auto: text that is valid UTF-8 comes back as UTF-8; anything else (binary types, and text
    /// types whose bytes are not UTF-8) as base64, so that bytes() is always exact. Utf8 asks for
    /// text: bytes that are not UTF-8 are replaced by U+FFFD. Base64: always base64.
    Encoding encoding = Encoding::Auto;
};

struct WriteFileResult {
    bool success = true;
    std::string path;
    std::string timestamp;
};

struct ReadFileResult {
    bool success = true;
    std::string path;
    std::string content;   ///< UTF-8 text, or base64 when encoding == "base64"
    std::string encoding;  ///< "utf-8" or "base64"
    bool isBinary = false;
    std::string mimeType;
    std::uint64_t size = 0;
    std::string timestamp;
    /// The raw bytes (decodes base64 content).
    std::string bytes() const;
};

/// Metadata of a streamed file (first event of readFileStream()).
struct FileMetadata {
    std::string mimeType;
    std::uint64_t size = 0;
    bool isBinary = false;
    std::string encoding;  ///< "utf-8" or "base64"
};

struct MkdirOptions {
    bool recursive = false;
};

struct ListFilesOptions {
    bool recursive = false;
    bool includeHidden = false;
};

/// One entry of listFiles().
struct FileInfo {
    std::string name;
    std::string absolutePath;
    std::string relativePath;
    std::string type;  ///< "file", "directory", "symlink" or "other"
    std::uint64_t size = 0;
    std::string modifiedAt;
    std::string mode;  ///< e.g. "rw-r--r--"
    struct {
        bool readable = false, writable = false, executable = false;
    } permissions;
};

struct ListFilesResult {
    bool success = true;
    std::string path;
    std::vector<FileInfo> files;
    std::size_t count = 0;
    std::string timestamp;
};

/// Result of mkdir/deleteFile/renameFile/moveFile.
struct FileOpResult {
    bool success = true;
    std::string path;
    std::optional<std::string> newPath;  ///< rename/move
    std::string timestamp;
};

struct ExistsResult {
    bool success = true;
    std::string path;
    bool exists = false;
    std::string timestamp;
};

/// Keys of an S3-compatible bucket.
struct BucketCredentials {
    std::string accessKeyId;
    std::string secretAccessKey;
};

/// Options of Sandbox::mountBucket(): a remote S3-compatible bucket.
struct MountBucketOptions {
    std::string
        endpoint;  ///< required: the S3 endpoint URL ("https://ACCOUNT.r2.cloudflarestorage.com")
    std::optional<BucketCredentials> credentials;  ///< default: the server's R2_* / AWS_* variables
    bool readOnly = false;
    std::optional<std::string> prefix;     ///< only the keys under it; must start with "/"
    std::vector<std::string> s3fsOptions;  ///< extra s3fs `-o` options, one per entry
};

/// Options of createSession().
struct SessionOptions {
    std::optional<std::string> id;                            ///< default "session-<epoch ms>"
    EnvVars env;                                              ///< on top of the sandbox's variables
    std::optional<std::string> cwd;                           ///< default /workspace
    std::optional<std::chrono::milliseconds> commandTimeout;  ///< per-command limit in this session
};

struct SessionDeleteResult {
    bool success = true;
    std::string sessionId;
    std::string timestamp;
};

/// Options of getSandbox().
/// A sandbox's network (docs/network.md). Without one, a sandbox reaches nothing but its own
/// loopback interface (sandboxd's default, which `sandboxd --network` may change).
struct NetworkOptions {
    /// Outbound TCP connections to what `allow` lists, and nothing else; false: none at all.
    bool outbound = false;
    /// What may be reached: "A.B.C.D[/N][:PORT[-PORT]]" (IPv4), "NAME[:PORT[-PORT]]" (a host
    /// by name, "pypi.org:443": resolved by sandboxd when the sandbox is made and pinned in its
    /// /etc/hosts; public addresses only), "host-loopback:PORT[-PORT]" (a service on the
    /// host's loopback, reached from inside at
    /// host.sandbox.internal / 10.0.2.2) and "dns" (name resolution). The host's loopback, the
    /// private, link-local and multicast ranges stay unreachable unless a rule names them.
    std::vector<std::string> allow;
};

struct SandboxOptions {
    /// When false, calls without a session run sessionless (a fresh shell per command).
    bool enableDefaultSession = true;
    /// Lower-case the name before use (names are otherwise case-sensitive).
    bool normalizeId = false;
    /// The sandbox's network, applied when the sandbox is first used (a running sandbox with
    /// another network is restarted under this one; its files stay). Needs sandboxd as root
    /// (the embedded default run as root, or SANDBOX_API_URL); elsewhere the first call throws
    /// UnsupportedOperationError, and a sandboxd that cannot offer it says why. Invalid rules:
    /// ValidationFailedError.
    std::optional<NetworkOptions> network;
};

}  // namespace sandbox
