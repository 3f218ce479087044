#pragma once
// The container API of one sandbox (sandbox-agent's routes, docs/agent.md), and the Connection
// that serves every SDK method through it.
#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "client/connection.hpp"
#include "client/requester.hpp"
#include "core/wire.hpp"

namespace sandbox::detail {

/// Requests to one sandbox's container API, and its default session.
class ContainerApi {
  public:
    ContainerApi(Requester& requester, client::Endpoint endpoint, std::shared_ptr<SandboxInfo> info)
        : req_(requester), ep_(std::move(endpoint)), info_(std::move(info)) {}

    /// The session a call runs in: the bound one; else the default session (created on first
    /// use, with the sandbox-level variables); else the "no session" marker when
    /// enableDefaultSession is false.
    std::string sessionFor(const BoundSession& bound);
    /// Whether the default session was made (by this handle's sandbox).
    bool defaultSessionReady() const { return defaultReady_.load(); }
    /// After the sandbox was destroyed: the next call makes the default session again.
    void forgetDefaultSession() { defaultReady_ = false; }

    /// POSTs a JSON body to `route` (with `headers`); returns the parsed answer. Errors are
    /// thrown typed.
    nlohmann::json post(const std::string& route, const nlohmann::json& body,
                        const std::string& operation, const client::HeaderList& headers = {});
    /// GET (or DELETE) without a body; returns the parsed answer (GETs are retried on 503).
    nlohmann::json get(const std::string& route, const std::string& operation,
                       std::string_view verb = "GET");
    /// A raw request (2xx only).
    client::HttpResponse call(std::string_view method, const std::string& route,
                              std::string_view body, const std::string& operation, bool idempotent);
    /// A streamed answer (SSE).
    std::unique_ptr<EventSource> stream(std::string_view method, const std::string& route,
                                        std::string_view body, const std::string& operation,
                                        std::optional<std::chrono::milliseconds> idle = {});
    /// Runs `export K=v` / `unset K` for `env` in session `id` (nullopt values unset).
    void applyEnv(const std::string& id, const EnvVars& env);

    const client::Endpoint& endpoint() const { return ep_; }
    Requester& requester() const { return req_; }
    const SandboxInfo& info() const { return *info_; }

  private:
    Requester& req_;
    client::Endpoint ep_;
    std::shared_ptr<SandboxInfo> info_;
    std::atomic<bool> defaultReady_{false};
};

/// How the sandbox's lifecycle is reached besides its container API.
enum class ContainerRoute {
    Direct,       ///< the agent transport: a URL of one sandbox's control plane
    Passthrough,  ///< a bridge's /v1/sandbox/ID/agent (sandboxd, the embedded default)
};

/// Every SDK method over the container API.
class ContainerConnection final : public Connection {
  public:
    /// `bridgeRoot`: the bridge's endpoint (Passthrough), or the agent URL (Direct).
    ContainerConnection(Requester& requester, client::Endpoint bridgeRoot, ContainerRoute route,
                        std::shared_ptr<SandboxInfo> info);

    std::string describe() const override;
    std::optional<std::string> defaultSession() const override {
        if (!info_->options.enableDefaultSession) return std::nullopt;
        return info_->defaultSessionId();
    }
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
    void setSessionEnv(const std::string& id, const EnvVars& env) override;
    void sandboxEnvChanged(const EnvVars& changes) override;
    void destroy() override;
    void mountBucket(std::string_view bucket, std::string_view mountPath,
                     const MountBucketOptions& o) override;
    void unmountBucket(std::string_view mountPath) override;
    TerminalTarget terminal(const std::string& session, const std::string& query) override;
    ContainerApi& containerApi(const char*) override { return api_; }
    BridgePorts& ports(const char* method, bool exposures) override;
    void applyNetwork(const NetworkOptions& o) override;

  private:
    /// /api/execute's body for `command` (also /api/execute/stream's).
    core::wire::ExecuteRequest executeRequest(std::string_view command, const ExecOptions& o,
                                              const BoundSession& s);

    Requester& req_;
    client::Endpoint root_;
    ContainerRoute route_;
    std::shared_ptr<SandboxInfo> info_;
    ContainerApi api_;
    BridgePorts ports_;  ///< sandboxd's (Passthrough only)
};

/// The SSE events of /api/execute/stream in the SDK's terms.
std::unique_ptr<ExecEventReader> containerExecEvents(std::unique_ptr<EventSource> src);

}  // namespace sandbox::detail
