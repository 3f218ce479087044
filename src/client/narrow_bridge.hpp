#pragma once
// Cloudflare's bridge (the npm `@cloudflare/sandbox` bridge Worker): /v1/sandbox/ID/exec (SSE,
// base64 output), /file (raw bytes), /session, /pty, /mount and the sandbox lifecycle. The other
// file operations run as commands with quoted argv. Results are made exactly what the container
// API gives (docs/compatibility.md, "One result on every transport").
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client/connection.hpp"
#include "client/requester.hpp"

namespace sandbox::detail {

class NarrowBridgeConnection final : public Connection {
  public:
    NarrowBridgeConnection(Requester& requester, client::Endpoint root,
                           std::shared_ptr<SandboxInfo> info)
        : req_(requester), root_(std::move(root)), info_(std::move(info)) {}

    std::string describe() const override { return "Cloudflare's bridge (SANDBOX_API_URL)"; }
    ExecResult exec(std::string_view command, const ExecOptions& o, const BoundSession& s) override;
    std::unique_ptr<ExecEventReader> execStream(std::string_view command, const ExecOptions& o,
                                                const BoundSession& s) override;
    WriteFileResult writeFile(std::string_view path, std::string_view content,
                              const WriteFileOptions& o, const BoundSession& s) override;
    ReadFileResult readFile(std::string_view path, const ReadFileOptions& o,
                            const BoundSession& s) override;
    std::unique_ptr<FileReader> readFileStream(std::string_view path,
                                               const BoundSession& s) override;
    std::string mkdir(std::string_view path, bool recursive, const BoundSession& s) override;
    std::string deleteFile(std::string_view path, const BoundSession& s) override;
    std::string move(std::string_view from, std::string_view to, bool rename,
                     const BoundSession& s) override;
    ListFilesResult listFiles(std::string_view path, const ListFilesOptions& o,
                              const BoundSession& s) override;
    ExistsResult exists(std::string_view path, const BoundSession& s) override;
    void createSession(const std::string& id, const SessionOptions& o, const EnvVars& env) override;
    std::string deleteSession(const std::string& id) override;
    void sandboxEnvChanged(const EnvVars&) override {}  // sent with every command
    void destroy() override;
    void mountBucket(std::string_view bucket, std::string_view mountPath,
                     const MountBucketOptions& o) override;
    void unmountBucket(std::string_view mountPath) override;
    TerminalTarget terminal(const std::string& session, const std::string& query) override;
    BridgePorts& ports(const char* method, bool exposures) override;

  private:
    std::unique_ptr<EventSource> openExec(const std::string& command, const ExecOptions& o,
                                          const BoundSession& s,
                                          std::optional<std::chrono::milliseconds> idle);
    /// Runs argv (quoted) to its end, raw output.
    ExecResult run(const std::vector<std::string>& argv);
    std::string fileTarget(std::string_view path, const char* operation) const;
    /// Throws FileNotFoundError when `path` is not a readable file (else returns).
    void explainBrokenDownload(std::string_view path, const char* operation);
    client::HeaderList sessionHeader(const BoundSession& s) const;

    Requester& req_;
    client::Endpoint root_;
    std::shared_ptr<SandboxInfo> info_;
    BridgePorts ports_{req_, root_, info_->bridgeId, false};
};

// ---- the pure parts (unit-tested in tests/client) -------------------------------------------

/// An absolute path as the bridge's routes take it: relative paths are under /workspace.
std::string bridgeWorkspacePath(std::string_view path);
/// Percent-encodes what is not an RFC 3986 pchar or '/'.
std::string bridgePathPart(std::string_view path);
/// The records of `find DIR -printf '%y\t%s\t%TY-%Tm-%TdT%TH:%TM:%TS\t%m\t%P\0'` as FileInfo,
/// with absolute paths under `dir`; malformed records are skipped.
std::vector<FileInfo> parseFindListing(std::string_view out, const std::string& dir);
/// The typed file error a failed command's stderr names (FileNotFoundError for "No such file",
/// PermissionDeniedError, FileExistsError, IS_DIRECTORY, NOT_DIRECTORY, else FILESYSTEM_ERROR).
[[noreturn]] void throwFileErrorFromStderr(const std::string& path, const std::string& stderrText,
                                           int exitCode, const std::string& operation);

}  // namespace sandbox::detail
