#pragma once
// The SDK's seam between its public classes and the wire. A Sandbox holds one Connection,
// chosen once when the Sandbox is made (client.cpp):
//  - ContainerConnection (container_connection.cpp): the container API, reached directly (the
//    agent transport) or through a bridge's passthrough /v1/sandbox/ID/agent (sandboxd, the
//    embedded default); sandbox lifecycle and bucket mounts through that bridge's /v1.
//  - NarrowBridgeConnection (narrow_bridge.cpp): Cloudflare's bridge, which has only /exec,
//    /file, /session, /pty, /mount and the sandbox lifecycle; the other file operations run as
//    commands with quoted argv.
// A public method validates its arguments, calls the connection, and returns what it got: each
// connection gives exactly the same results (docs/compatibility.md, "One result on every
// transport"). What a transport cannot do is said in one place: Connection's defaults throw
// UnsupportedOperationError naming the method and what it needs.
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "client/http_client.hpp"
#include "sandbox/client.hpp"

namespace sandbox::detail {

class Requester;
class EventSource;
class ContainerApi;

/// What every connection knows of its sandbox. Shared by the Sandbox's handles.
struct SandboxInfo {
    std::string name;      ///< as given to getSandbox() (lower-cased with normalizeId)
    std::string bridgeId;  ///< its id on a bridge: lower-case base32 of the name
    SandboxOptions options;

    /// The sandbox-level variables (Sandbox::setEnvVars): sessions created later and
    /// session-less commands get them.
    EnvVars env() const {
        std::lock_guard lock(m_);
        return env_;
    }
    /// Sets (value) or unsets (nullopt) sandbox-level variables.
    void updateEnv(const EnvVars& changes);
    /// The sandbox-level variables under `perCall` (per-call values win; unset entries dropped).
    EnvVars withSandboxEnv(const EnvVars& perCall) const;
    /// The default session's id ("sandbox-<name>").
    std::string defaultSessionId() const { return "sandbox-" + name; }

  private:
    mutable std::mutex m_;
    EnvVars env_;
};

/// The events of a running command, in the SDK's terms, whatever the wire's framing.
class ExecEventReader {
  public:
    virtual ~ExecEventReader() = default;
    /// The next event; nullopt when the stream ended (ExecStream decides whether that was
    /// early). Throws StreamLostError / TimeoutError.
    virtual std::optional<ExecEvent> next() = 0;
};

/// A file's content as it arrives: metadata first, then chunks of raw bytes.
class FileReader {
  public:
    virtual ~FileReader() = default;
    virtual const FileMetadata& metadata() = 0;
    /// The next chunk (already decoded), or nullopt at the end.
    virtual std::optional<std::string> nextChunk() = 0;
};

/// Where a terminal's WebSocket connects: the endpoint, the request target, the headers.
struct TerminalTarget {
    client::Endpoint endpoint;
    std::string target;
    client::HeaderList headers;
};

/// POST /v1/sandbox/ID/mount and /unmount: bucket mounts as every bridge serves them.
void bridgeMount(Requester& req, const client::Endpoint& root, const std::string& bridgeId,
                 std::string_view bucket, std::string_view mountPath, const MountBucketOptions& o);
void bridgeUnmount(Requester& req, const client::Endpoint& root, const std::string& bridgeId,
                   std::string_view mountPath);

/// sandboxd's port routes and the bridge's tunnel routes (ports.cpp). `sandboxd`: the bridge
/// is sandboxd (exposures and the tunnel list exist), not Cloudflare's.
class BridgePorts {
  public:
    BridgePorts(Requester& req, client::Endpoint root, std::string bridgeId, bool sandboxd)
        : req_(req), root_(std::move(root)), id_(std::move(bridgeId)), sandboxd_(sandboxd) {}
    bool sandboxd() const { return sandboxd_; }
    ExposedPort expose(int port, const ExposePortOptions& o);
    void unexpose(int port);
    std::vector<ExposedPortInfo> exposed(const std::optional<std::string>& hostname);
    bool isExposed(int port);
    bool validate(int port, std::string_view token);
    Tunnel tunnel(int port, const TunnelOptions& o);
    std::vector<Tunnel> tunnels();
    void destroyTunnel(int port);

  private:
    std::string base() const { return "/v1/sandbox/" + id_; }
    Requester& req_;
    client::Endpoint root_;
    std::string id_;
    bool sandboxd_;
};

/// The session a call runs in: an ExecutionSession's id, or nullopt for the sandbox's
/// default (or no session at all when enableDefaultSession is false).
using BoundSession = std::optional<std::string>;

/// One sandbox as one transport reaches it. Thread-safe.
class Connection {
  public:
    virtual ~Connection() = default;
    /// "the container API", "Cloudflare's bridge": for messages.
    virtual std::string describe() const = 0;

    /// The session an unbound call runs in, when there is one that keeps its state between
    /// calls (the container API's default session); nullopt otherwise.
    virtual std::optional<std::string> defaultSession() const { return std::nullopt; }

    // ---- commands ----
    /// Runs a command to its end. The output follows the container API's session rule (the
    /// final newline of each stream removed, docs/compatibility.md) on every transport.
    virtual ExecResult exec(std::string_view command, const ExecOptions& o,
                            const BoundSession& s) = 0;
    virtual std::unique_ptr<ExecEventReader> execStream(std::string_view command,
                                                        const ExecOptions& o,
                                                        const BoundSession& s) = 0;

    // ---- files (paths already checked) ----
    virtual WriteFileResult writeFile(std::string_view path, std::string_view content,
                                      const WriteFileOptions& o, const BoundSession& s) = 0;
    virtual ReadFileResult readFile(std::string_view path, const ReadFileOptions& o,
                                    const BoundSession& s) = 0;
    virtual std::unique_ptr<FileReader> readFileStream(std::string_view path,
                                                       const BoundSession& s) = 0;
    /// The file operations without a body: each returns the operation's timestamp.
    virtual std::string mkdir(std::string_view path, bool recursive, const BoundSession& s) = 0;
    virtual std::string deleteFile(std::string_view path, const BoundSession& s) = 0;
    /// renameFile (`rename`) or moveFile.
    virtual std::string move(std::string_view from, std::string_view to, bool rename,
                             const BoundSession& s) = 0;
    virtual ListFilesResult listFiles(std::string_view path, const ListFilesOptions& o,
                                      const BoundSession& s) = 0;
    virtual ExistsResult exists(std::string_view path, const BoundSession& s) = 0;

    // ---- sessions and variables ----
    /// Creates session `id` with `env` (sandbox-level variables already merged in).
    virtual void createSession(const std::string& id, const SessionOptions& o,
                               const EnvVars& env) = 0;
    /// Deletes a session; returns the timestamp.
    virtual std::string deleteSession(const std::string& id) = 0;
    /// Sets or unsets variables in session `id`'s shell.
    virtual void setSessionEnv(const std::string& id, const EnvVars& env);
    /// After Sandbox::setEnvVars changed the sandbox-level variables: applies `changes` to the
    /// default session when it exists already.
    virtual void sandboxEnvChanged(const EnvVars& changes) = 0;

    // ---- the sandbox itself (the bridge's) ----
    virtual void destroy();
    virtual void mountBucket(std::string_view bucket, std::string_view mountPath,
                             const MountBucketOptions& o);
    virtual void unmountBucket(std::string_view mountPath);

    // ---- the terminal ----
    /// Where the terminal of session `session` connects, with `query` (cols, rows, shell).
    virtual TerminalTarget terminal(const std::string& session, const std::string& query) = 0;

    /// The container API (processes, port watches, file watches, git), or
    /// UnsupportedOperationError saying that `method` needs it and this transport lacks it.
    virtual ContainerApi& containerApi(const char* method);
    /// The port and tunnel routes for `method`, or UnsupportedOperationError saying why this
    /// transport lacks them: `exposures` (exposePort and friends, the tunnel list) need
    /// sandboxd; tunnels need a bridge.
    virtual BridgePorts& ports(const char* method, bool exposures);
    /// Applies SandboxOptions::network (sandboxd's PUT /v1/sandbox/ID/network), or
    /// UnsupportedOperationError where the transport has no way to.
    virtual void applyNetwork(const NetworkOptions& o);

  protected:
    /// Throws UnsupportedOperationError: "<method> needs <what>; <describe()> ...".
    [[noreturn]] void unsupported(const char* method, const std::string& why) const;
};

}  // namespace sandbox::detail
