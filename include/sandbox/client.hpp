#pragma once
/// @file
/// The entry points: a Client (where sandboxes live), getSandbox() (a handle on one sandbox),
/// and the Sandbox / ExecutionSession methods. Mirrors the TypeScript `@cloudflare/sandbox` API.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/errors.hpp"
#include "sandbox/git_watch.hpp"
#include "sandbox/interpreter.hpp"
#include "sandbox/ports.hpp"
#include "sandbox/process.hpp"
#include "sandbox/pty.hpp"
#include "sandbox/pull_iterator.hpp"
#include "sandbox/types.hpp"

namespace sandbox {

namespace detail {
class ClientImpl;
struct SandboxState;
class ExecEventReader;
class FileReader;
}  // namespace detail

class Sandbox;
class Client;
struct SandboxOptions;
Sandbox getSandbox(const Client& client, std::string id, SandboxOptions options);

/// How a Client reaches its sandboxes.
enum class TransportKind {
    Bridge,    ///< a bridge `/v1` API (Cloudflare's, or sandboxd's): SANDBOX_API_URL
    Agent,     ///< a sandbox's container API directly: SANDBOX_AGENT_URL
    Embedded,  ///< a private sandboxd started by this process (the default)
};

/// Client settings. Empty fields are taken from the environment (see Client::fromEnv).
struct ClientOptions {
    std::string
        apiUrl;  ///< bridge base URL ("https://...workers.dev", "http://host:port", "unix:/path")
    std::string apiKey;    ///< bearer token for the bridge (or the agent)
    std::string agentUrl;  ///< container API base URL ("http://localhost:3000", or sandboxd's
                           ///< /v1/sandbox/ID/agent)
    std::chrono::milliseconds connectTimeout{10'000};
    std::chrono::milliseconds requestTimeout{600'000};     ///< whole non-streaming request
    std::chrono::milliseconds streamIdleTimeout{300'000};  ///< silence allowed inside a stream
    /// Retry budget for 503 answers and refused connections on requests that are safe to repeat
    /// (as while a container starts); 0 disables retries.
    std::chrono::milliseconds retryBudget{30'000};
    std::string caFile;        ///< extra CA certificate(s) (PEM) for https
    std::string sandboxdPath;  ///< embedded default: the sandboxd binary (else SANDBOXD_PATH, next
                               ///< to the executable, the install prefix, PATH)
    /// Embedded default only: run sandboxes with NO isolation (sandboxd `--isolation none`:
    /// commands run as this program's user and see the whole machine), for development where
    /// bubblewrap cannot work. Never for code you do not trust. Without it (the default) the
    /// embedded sandboxd isolates every sandbox or refuses to start, and making the Client
    /// throws ConnectionError saying why. Also set by SANDBOX_ISOLATION=none (`bwrap`: the
    /// default; anything else is a ValidationFailedError).
    bool unisolated = false;
};

/// Where sandboxes live. Cheap to copy (shared state); safe to use from several threads.
class Client {
  public:
    /// Explicit options; empty URL fields fall back to the environment as fromEnv() does.
    explicit Client(ClientOptions options = {});
    /// SANDBOX_API_URL (+ SANDBOX_API_KEY) -> bridge; else SANDBOX_AGENT_URL (+ SANDBOX_API_KEY)
    /// -> agent; else the embedded default: a private sandboxd on a unix socket, started on first
    /// use, stopped with all its sandboxes when the last Client copy goes away.
    static Client fromEnv();
    TransportKind transport() const;
    /// A short description of the backend ("bridge https://...", "embedded sandboxd (pid N,
    /// unix:PATH; isolation: bwrap; per-sandbox host uids ...; seccomp; ...)": for the embedded
    /// default, what isolates its sandboxes, as sandboxd reported it at start).
    std::string describe() const;

  private:
    friend class Sandbox;
    friend Sandbox getSandbox(const Client&, std::string, SandboxOptions);
    std::shared_ptr<detail::ClientImpl> impl_;
};

/// The events of a running command, pulled one by one: `for (auto& ev : sb.execStream(cmd))`.
/// Destroying the stream before the end cancels the command. A stream that ends without a
/// `complete` or `error` event throws StreamLostError instead of ending silently.
class ExecStream {
  public:
    /// Input iterator over the items (see PullIterator).
    using iterator = PullIterator<ExecStream, ExecEvent>;
    ExecStream(ExecStream&&) noexcept;
    ExecStream& operator=(ExecStream&&) noexcept;
    ~ExecStream();
    /// The next event, or nullopt after the terminal event.
    std::optional<ExecEvent> next();
    iterator begin();
    std::default_sentinel_t end() { return {}; }

  private:
    friend class SandboxOperations;
    ExecStream(std::unique_ptr<detail::ExecEventReader> events, std::string command);
    std::unique_ptr<detail::ExecEventReader> events_;
    std::string command_;
    bool done_ = false;
};

/// A file read in chunks (readFileStream): metadata first, then the content piece by piece.
class FileStream {
  public:
    FileStream(FileStream&&) noexcept;
    FileStream& operator=(FileStream&&) noexcept;
    ~FileStream();
    /// The file's metadata (reads up to the first event).
    const FileMetadata& metadata();
    /// The next chunk of raw bytes (base64 already decoded), or nullopt at the end.
    std::optional<std::string> nextChunk();
    /// Reads the rest and returns all bytes (collectFile).
    std::string collect();

  private:
    friend class SandboxOperations;
    explicit FileStream(std::unique_ptr<detail::FileReader> reader);
    std::unique_ptr<detail::FileReader> reader_;
};

class ExecutionSession;

/// What a Sandbox and an ExecutionSession both do: commands, files, watches, git, background
/// processes, variables and the terminal. On a Sandbox they run in its default session (or
/// session-less when SandboxOptions::enableDefaultSession is false); on an ExecutionSession, in
/// that session's shell. Cheap to copy; safe to use from several threads at once (each call uses
/// its own connection from a shared pool).
class SandboxOperations {
  public:
    // ---- commands ----
    /// Runs a shell command and waits for it. A non-zero exit is a result, not an exception.
    ExecResult exec(std::string_view command, const ExecOptions& options = {}) const;
    /// Starts a command and returns its events as they happen.
    ExecStream execStream(std::string_view command, const ExecOptions& options = {}) const;

    // ---- files (relative paths resolve against the session's working directory) ----
    WriteFileResult writeFile(std::string_view path, std::string_view content,
                              const WriteFileOptions& options = {}) const;
    ReadFileResult readFile(std::string_view path, const ReadFileOptions& options = {}) const;
    FileStream readFileStream(std::string_view path) const;
    FileOpResult mkdir(std::string_view path, const MkdirOptions& options = {}) const;
    FileOpResult deleteFile(std::string_view path) const;
    FileOpResult renameFile(std::string_view oldPath, std::string_view newPath) const;
    FileOpResult moveFile(std::string_view sourcePath, std::string_view destinationPath) const;
    ListFilesResult listFiles(std::string_view path, const ListFilesOptions& options = {}) const;
    ExistsResult exists(std::string_view path) const;

    // ---- file watching and git (need the container API: the agent transport, the embedded
    // default, or sandboxd's bridge; else UnsupportedOperationError) ----
    /// Watches a file or directory (relative paths: from the workspace root; it must be inside
    /// the workspace). Returns once the watch is established; the stream's events follow.
    FileWatch watch(std::string_view path, const WatchOptions& options = {}) const;
    /// Change detection without a live stream: the first call starts tracking and returns a
    /// version; a later call with `.since = version` says whether anything changed since.
    CheckChangesResult checkChanges(std::string_view path,
                                    const CheckChangesOptions& options = {}) const;
    /// Clones a repository (credentials may be given in the URL; they are redacted in every
    /// message; a relative targetDir is relative to the session's directory). Throws the Git*
    /// errors (GitRepositoryNotFoundError, GitBranchNotFoundError, GitNetworkError for a clone
    /// timeout, InvalidGitUrlError, ...).
    GitCheckoutResult gitCheckout(std::string_view repoUrl,
                                  const GitCheckoutOptions& options = {}) const;

    // ---- background processes (sandbox-wide ids; need the container API, else
    // UnsupportedOperationError) ----
    /// Starts `command` in the background (in this session, or the default one).
    Process startProcess(std::string_view command, const ProcessOptions& options = {}) const;
    /// Every process the sandbox knows, running ones first.
    std::vector<Process> listProcesses() const;
    /// One process; empty when the sandbox does not know it.
    std::optional<Process> getProcess(std::string_view id) const;
    /// Kills a process and every descendant ("SIGTERM" then SIGKILL after a grace period, or
    /// "SIGKILL" at once). ProcessNotFoundError for an unknown id, CommandNotFoundError when it
    /// already ended.
    void killProcess(std::string_view id, std::string_view signal = "SIGTERM") const;
    /// Kills every running process; returns how many.
    int killAllProcesses() const;
    /// A process's output so far.
    ProcessLogs getProcessLogs(std::string_view id) const;
    /// A process's output: what is buffered, then live, then its exit.
    LogStream streamProcessLogs(std::string_view id) const;

    // ---- code interpreter (needs the container API: the agent transport, the embedded
    // default, or sandboxd's bridge; else UnsupportedOperationError). sandbox/interpreter.hpp
    // has the types, docs/interpreter.md the guide. ----
    /// A new context: an interpreter of its own whose state persists between runs (made on
    /// an ExecutionSession, it ends when that session is deleted). Throws
    /// SandboxSecurityError for an unknown language, ValidationFailedError for a cwd that is
    /// not a directory, SandboxError PYTHON_NOT_AVAILABLE / JAVASCRIPT_NOT_AVAILABLE (501)
    /// when the sandbox lacks the runtime.
    CodeContext createCodeContext(const CreateContextOptions& options = {}) const;
    /// Runs code and returns its output, results and error once it ended; the callbacks see
    /// each piece as it arrives (on the calling thread). An exception the code raises is
    /// ExecutionResult::error, not a C++ exception; ContextNotFoundError for a deleted context.
    ExecutionResult runCode(std::string_view code, const RunCodeOptions& options = {}) const;
    /// Runs code and returns its events as they happen.
    CodeStream runCodeStream(std::string_view code, const RunCodeOptions& options = {}) const;
    /// The sandbox's contexts, in creation order.
    std::vector<CodeContext> listCodeContexts() const;
    /// Deletes a context and stops its interpreter. ContextNotFoundError when unknown.
    void deleteCodeContext(std::string_view contextId) const;

    // ---- environment ----
    /// Sets (or, with std::nullopt, unsets) variables. On a Sandbox: for the default session
    /// (now, if it exists), sessions created later and session-less commands. On an
    /// ExecutionSession: in that session's shell only. Per-session values win over sandbox
    /// values, per-command values over both.
    void setEnvVars(const EnvVars& envVars) const;

    // ---- terminal ----
    /// An interactive terminal on the default session (Sandbox) or this session
    /// (ExecutionSession; one terminal per session, shared), over the container API's /ws/pty
    /// or the bridge's /pty route. See sandbox/pty.hpp.
    Pty terminal(const PtyOptions& options = {}) const;

  protected:
    SandboxOperations() = default;
    SandboxOperations(std::shared_ptr<detail::SandboxState> state,
                      std::optional<std::string> session)
        : state_(std::move(state)), session_(std::move(session)) {}
    std::shared_ptr<detail::SandboxState> state_;
    std::optional<std::string> session_;  // bound session (ExecutionSession), else the default
};

/// A handle on one sandbox (getSandbox()). Cheap to copy; safe to use from several threads.
class Sandbox : public SandboxOperations {
  public:
    /// The name given to getSandbox().
    const std::string& id() const;

    // ---- sessions ----
    /// A new shell with its own working directory and variables (id: options.id, else a fresh
    /// "session-<uuid>").
    ExecutionSession createSession(const SessionOptions& options = {}) const;
    /// A handle on an existing session (not checked until first use).
    ExecutionSession getSession(std::string_view sessionId) const;
    SessionDeleteResult deleteSession(std::string_view sessionId) const;

    // ---- bucket mounts ----
    /// Mounts an S3-compatible bucket (R2, S3, MinIO, ...) at `mountPath` in the sandbox: the
    /// bridge's POST /v1/sandbox/ID/mount (on sandboxd, s3fs runs on the host and the mount is
    /// attached in the sandbox alone; docs/sandboxd.md). Credentials default to the server's
    /// R2_* / AWS_* variables. Throws ValidationFailedError for a body the bridge refuses and
    /// BucketMountError (`mount_error`, with the reason) when it cannot mount; over the agent
    /// transport, UnsupportedOperationError (a sandbox cannot mount into itself).
    void mountBucket(std::string_view bucket, std::string_view mountPath,
                     const MountBucketOptions& options) const;
    /// Unmounts what mountBucket() mounted at `mountPath` and removes the mount point when
    /// empty. Throws BucketMountError (`unmount_error`) when nothing is mounted there.
    void unmountBucket(std::string_view mountPath) const;

    // ---- ports and preview URLs (sandboxd and the embedded default; sandbox/ports.hpp,
    // docs/ports.md). Ports are 1024-65535 except 3000, else SandboxSecurityError. Over
    // Cloudflare's bridge and the agent transport: UnsupportedOperationError (Cloudflare serves
    // preview URLs from a Worker's proxyToSandbox, which no HTTP API reaches). ----
    /// Makes a server listening on `port` inside the sandbox reachable at a preview URL, for
    /// this launch of the sandbox (after a restart the URL answers 410 until exposed again;
    /// the token is kept). Throws SandboxSecurityError for a bad port or token (or a token
    /// another port uses), CustomDomainRequiredError for a .workers.dev hostname.
    ExposedPort exposePort(int port, const ExposePortOptions& options = {}) const;
    /// Revokes the port's URL: new requests get 404 and open connections are cut. Idempotent.
    void unexposePort(int port) const;
    /// The ports preview traffic reaches now (with URLs written for `hostname` when given).
    std::vector<ExposedPortInfo> getExposedPorts(
        const std::optional<std::string>& hostname = std::nullopt) const;
    /// Whether `port` has a token (active or stale).
    bool isPortExposed(int port) const;
    /// Whether `token` is the port's token (compared in constant time); false when the port is
    /// not exposed or the token is malformed.
    bool validatePortToken(int port, std::string_view token) const;
    /// The sandbox's tunnels.
    Tunnels tunnels() const;

    /// Destroys the sandbox: every process dies and its files are removed.
    void destroy() const;

  private:
    friend Sandbox getSandbox(const Client&, std::string, SandboxOptions);
    explicit Sandbox(std::shared_ptr<detail::SandboxState> state)
        : SandboxOperations(std::move(state), std::nullopt) {}
};

/// Owns a sandbox for a scope and destroys it at the end of the scope, however the scope ends:
/// the C++ form of the TypeScript docs' `try { ... } finally { await sandbox.destroy() }`.
///
///     sandbox::ScopedSandbox sb(sandbox::getSandbox(client, "job-42"));
///     sb->exec("make test");
///     // destroyed here, also when exec() threw
///
/// The destructor does not throw: a failure to destroy there is dropped (call destroy() first
/// to see it). Move-only; release() hands the sandbox back without destroying it.
class ScopedSandbox {
  public:
    explicit ScopedSandbox(Sandbox sandbox);
    ScopedSandbox(ScopedSandbox&& other) noexcept;
    ScopedSandbox& operator=(ScopedSandbox&& other) noexcept;
    ScopedSandbox(const ScopedSandbox&) = delete;
    ScopedSandbox& operator=(const ScopedSandbox&) = delete;
    /// Destroys the sandbox unless it was released or destroyed already.
    ~ScopedSandbox();

    /// The sandbox (precondition: not released).
    const Sandbox& get() const { return *sandbox_; }
    const Sandbox& operator*() const { return *sandbox_; }
    const Sandbox* operator->() const { return &*sandbox_; }
    /// Whether this still owns a sandbox (false after release() or destroy()).
    explicit operator bool() const { return sandbox_.has_value(); }

    /// Destroys the sandbox now and reports failures as Sandbox::destroy() does.
    void destroy();
    /// Gives up ownership: the sandbox is returned and outlives this guard.
    Sandbox release();

  private:
    std::optional<Sandbox> sandbox_;
};

/// A session of a sandbox: the SandboxOperations bound to one shell (createSession() /
/// getSession()).
class ExecutionSession : public SandboxOperations {
  public:
    /// The session's id.
    const std::string& id() const { return *session_; }

  private:
    friend class Sandbox;
    ExecutionSession(std::shared_ptr<detail::SandboxState> state, std::string id)
        : SandboxOperations(std::move(state), std::move(id)) {}
};

/// A handle on the sandbox named `id` (created on first use). Names follow the TypeScript
/// SDK's rules: 1-63 characters, no leading/trailing '-', not a reserved word; otherwise
/// SandboxSecurityError. See docs/sdk.md for how names map to bridge ids.
Sandbox getSandbox(const Client& client, std::string id, SandboxOptions options = SandboxOptions{});

}  // namespace sandbox
