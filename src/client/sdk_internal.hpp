#pragma once
// SDK internals shared by the SDK's translation units (sdk.cpp, embedded.cpp, and the
// per-area files: processes, git/watch, pty).
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.hpp"
#include "sandbox/client.hpp"
#include "sandbox/errors.hpp"
#include "sandbox/sse.hpp"

namespace sandbox::detail {

/// A private sandboxd on a unix socket in a private temp directory (the embedded default).
class EmbeddedDaemon {
  public:
    /// Finds and starts sandboxd (one per process, binary and isolation choice), isolated unless
    /// `unisolated`; throws ConnectionError naming where it looked, or why it did not start.
    static std::shared_ptr<EmbeddedDaemon> shared(const std::string& explicitPath, bool unisolated);
    ~EmbeddedDaemon();
    const std::string& socketPath() const { return socket_; }
    pid_t pid() const { return pid_; }
    /// What isolates its sandboxes, from its start-up line ("bwrap; per-sandbox host uids ...").
    const std::string& isolation() const { return isolation_; }

  private:
    EmbeddedDaemon() = default;
    std::string dir_, socket_, isolation_;
    pid_t pid_ = -1;
    int stdinFd_ = -1;
};

/// Where sandboxd is looked for, in order (for messages and tests).
std::vector<std::string> sandboxdCandidates(const std::string& explicitPath);

/// A streamed response: its SSE events pulled one at a time, or its raw bytes.
class EventSource {
  public:
    EventSource(std::unique_ptr<client::HttpConnection> conn, std::string operation);
    ~EventSource();
    /// Next SSE event; nullopt when the body ended. Throws StreamLostError / TimeoutError.
    std::optional<SseEvent> next();
    /// Next raw body piece; false at the end (for non-SSE bodies).
    bool nextRaw(std::string& out);
    /// Changes how long one wait for more of the body may take (0: no limit).
    void setIdleTimeout(std::chrono::milliseconds t) { conn_->setIoTimeout(t); }
    /// Queues an event the server did not send (next() returns it before reading on).
    void push(SseEvent ev) { queue_.push_back(std::move(ev)); }

    client::HeaderList headers;  ///< the response's headers
    bool raw = false;            ///< the body is a file's bytes, not SSE (a bridge download)

  private:
    std::unique_ptr<client::HttpConnection> conn_;
    std::string operation_;
    SseParser parser_;
    std::vector<SseEvent> queue_;
    std::size_t queuePos_ = 0;
    bool eof_ = false;
};

/// Maps a transport failure to the SDK exception for `operation`.
[[noreturn]] void rethrowTransport(const client::TransportError& e, const std::string& operation,
                                   bool midStream);

using client::HeaderList;
using client::HttpConnection;

// ---- the client ---------------------------------------------------------------------------

class ClientImpl {
  public:
    TransportKind kind = TransportKind::Embedded;
    ClientOptions opts;
    client::Endpoint root;
    client::HttpSettings settings;
    std::shared_ptr<EmbeddedDaemon> daemon;
    HeaderList auth;
    std::mutex m;
    std::vector<std::unique_ptr<HttpConnection>> idle;
    std::atomic<int> agentExtension{
        -1};  // bridge: does it serve /v1/sandbox/ID/agent/*? (-1: unknown)

    std::unique_ptr<HttpConnection> acquire(const client::Endpoint& ep) {
        {
            std::lock_guard lock(m);
            for (auto it = idle.begin(); it != idle.end(); ++it)
                if ((*it)->endpoint().basePath == ep.basePath) {
                    auto c = std::move(*it);
                    idle.erase(it);
                    c->setIoTimeout(opts.requestTimeout);
                    return c;
                }
        }
        return std::make_unique<HttpConnection>(ep, settings);
    }

    void release(std::unique_ptr<HttpConnection> c) {
        if (!c || !c->connected()) return;
        std::lock_guard lock(m);
        if (idle.size() < 16) idle.push_back(std::move(c));
    }

    HeaderList headers(const HeaderList& extra = {}) const {
        HeaderList h = auth;
        h.insert(h.end(), extra.begin(), extra.end());
        return h;
    }

    /// A request with retries (503 and refused connections, within the retry budget) when
    /// `idempotent`; errors mapped to SDK exceptions. Returns 2xx responses only.
    client::HttpResponse call(const client::Endpoint& ep, std::string_view method,
                              const std::string& target, std::string_view body,
                              const HeaderList& extra, const std::string& operation,
                              bool idempotent) {
        auto deadline = std::chrono::steady_clock::now() + opts.retryBudget;
        auto backoff = std::chrono::milliseconds(100);
        for (;;) {
            auto conn = acquire(ep);
            client::HttpResponse r;
            try {
                r = conn->request(method, target, body, headers(extra));
            } catch (const client::TransportError& e) {
                bool retry = e.kind() == client::TransportError::Kind::Connect && e.refused() &&
                             std::chrono::steady_clock::now() + backoff < deadline;
                if (!retry) rethrowTransport(e, operation, false);
                std::this_thread::sleep_for(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(3000));
                continue;
            }
            release(std::move(conn));
            if (r.status == 503 && idempotent &&
                std::chrono::steady_clock::now() + backoff < deadline) {
                std::this_thread::sleep_for(backoff);
                backoff = std::min(backoff * 2, std::chrono::milliseconds(3000));
                continue;
            }
            if (r.status < 200 || r.status >= 300)
                throwErrorFromResponse(r.status, r.body, operation);
            return r;
        }
    }

    /// A streaming request: the response head is checked (errors thrown), the body is returned
    /// as an EventSource owning the connection. `idle` bounds each wait for more of the body
    /// (default: the stream idle timeout).
    std::unique_ptr<EventSource> stream(
        const client::Endpoint& ep, std::string_view method, const std::string& target,
        std::string_view body, const HeaderList& extra, const std::string& operation,
        std::optional<std::chrono::milliseconds> idle = std::nullopt) {
        auto conn = std::make_unique<HttpConnection>(ep, settings);
        client::HttpResponse head;
        try {
            head = conn->startStream(method, target, body, headers(extra));
        } catch (const client::TransportError& e) {
            rethrowTransport(e, operation, false);
        }
        if (head.status < 200 || head.status >= 300) {
            std::string text, piece;
            try {
                while (text.size() < (1 << 20) && conn->readChunk(piece)) text += piece;
            } catch (const client::TransportError&) {
            }
            throwErrorFromResponse(head.status, text, operation);
        }
        conn->setIoTimeout(idle.value_or(opts.streamIdleTimeout));
        auto src = std::make_unique<EventSource>(std::move(conn), operation);
        src->headers = std::move(head.headers);
        return src;
    }
};

struct SandboxState {
    std::shared_ptr<ClientImpl> client;
    std::string name;
    std::string bridgeId;
    SandboxOptions options;
    std::mutex m;
    bool defaultSessionReady = false;
    std::optional<client::Endpoint> agentEp;  // container API base, when reachable
    EnvVars envVars;  // sandbox-level variables (setEnvVars): new sessions, session-less calls

    std::string defaultSessionId() const { return "sandbox-" + name; }
};

/// The container API endpoint of a sandbox (agent transport, or the bridge's passthrough);
/// empty when the bridge has no passthrough (Cloudflare's narrow bridge).
const client::Endpoint& agentEndpoint(SandboxState& st);
/// Whether agentEndpoint() is usable.
bool hasAgent(SandboxState& st);
/// POST `body` to a container API route; returns the parsed JSON (errors thrown as SDK types).
nlohmann::json agentCall(SandboxState& st, const std::string& route, const nlohmann::json& body,
                         const std::string& op);
/// The session a call runs in: the bound one, the default session (created on first use), or
/// the "no session" marker when enableDefaultSession is false.
std::string sessionFor(SandboxState& st, const std::optional<std::string>& bound);
/// EnvVars as a JSON object (unset entries left out).
nlohmann::json envJson(const EnvVars& env);
/// The sandbox-level variables under `perCall` (per-call values win): what a session-less
/// call runs with.
EnvVars withSandboxEnv(SandboxState& st, const EnvVars& perCall);
/// Runs `export K=v` / `unset K` for `env` in session `sessionId` (nullopt values unset).
/// Throws ValidationFailedError for a bad name, SandboxError when the shell command fails.
void applyEnvInSession(SandboxState& st, const std::string& sessionId, const EnvVars& env);
/// Throws ValidationFailedError for a malformed path, as the container would.
void checkPath(std::string_view path, const char* operation);

}  // namespace sandbox::detail
