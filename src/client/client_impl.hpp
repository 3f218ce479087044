#pragma once
// What a Client and a Sandbox hold (shared by their handles), the embedded sandboxd, and the
// threads user callbacks run on.
#include <sys/types.h>

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/connection.hpp"
#include "client/requester.hpp"
#include "sandbox/client.hpp"

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

/// What a bridge serves besides Cloudflare's narrow routes.
enum class BridgeFlavour {
    Unknown,
    Narrow,       ///< Cloudflare's bridge: /exec, /file, /session, /pty, /mount
    Passthrough,  ///< sandboxd: also the container API under /v1/sandbox/ID/agent
};

/// A Client's shared state.
class ClientImpl {
  public:
    TransportKind kind = TransportKind::Embedded;
    ClientOptions opts;
    client::Endpoint root;  ///< the bridge, the agent, or the embedded sandboxd's socket
    std::shared_ptr<EmbeddedDaemon> daemon;
    std::unique_ptr<Requester> requester;

    /// A bridge's flavour, asked once (GET /health: sandboxd's answer names its container API
    /// passthrough) the first time a Sandbox is made. Throws what the request threw (then the
    /// next Sandbox asks again).
    BridgeFlavour bridgeFlavour();
    /// The connection for a new Sandbox.
    std::unique_ptr<Connection> connect(std::shared_ptr<SandboxInfo> info);
    /// connect(), then SandboxOptions::network applied (a throw leaves nothing connected).
    std::unique_ptr<Connection> connectApplying(std::shared_ptr<SandboxInfo> info);

  private:
    std::once_flag flavourOnce_;
    BridgeFlavour flavour_ = BridgeFlavour::Unknown;
};

/// Threads the SDK runs user callbacks on (a process's onOutput / onExit). Owned by a Sandbox's
/// shared state: when its last handle goes, each thread is interrupted (its stream shut down;
/// no callback runs after that) and joined, so no callback outlives the Sandbox. A thread that
/// drops the last handle itself is left to finish on its own (it owns what it uses).
class CallbackThreads {
  public:
    CallbackThreads() = default;
    CallbackThreads(const CallbackThreads&) = delete;
    CallbackThreads& operator=(const CallbackThreads&) = delete;
    ~CallbackThreads();
    /// Runs `body(stopping)` on a new thread; `interrupt` makes it return early. `body` must not
    /// call user code once `stopping` is true.
    void start(std::function<void(const std::atomic<bool>& stopping)> body,
               std::function<void()> interrupt);

  private:
    struct Entry {
        std::thread thread;
        std::function<void()> interrupt;
        std::shared_ptr<std::atomic<bool>> finished;
    };
    std::mutex m_;
    std::list<Entry> entries_;
    std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
};

/// A Sandbox's shared state: every copy of a Sandbox, its ExecutionSessions and Processes
/// point here.
struct SandboxState {
    std::shared_ptr<ClientImpl> client;  // first: outlives the connection that uses it
    std::shared_ptr<SandboxInfo> info;
    CallbackThreads callbacks;  // user callbacks' threads (each owns the stream it reads)
    /// runCode()'s default context per language (interpreter.cpp).
    std::mutex interpreterMutex;
    std::map<std::string, CodeContext> defaultContexts;

    /// The sandbox's connection: made on first use (getSandbox does no I/O; a bridge Client
    /// asks its bridge once what it serves), then the same for the Sandbox's life. Throws what
    /// making it threw; the next call tries again.
    Connection& conn() {
        std::call_once(connOnce_, [&] { conn_ = client->connectApplying(info); });
        return *conn_;
    }

  private:
    std::once_flag connOnce_;
    std::unique_ptr<Connection> conn_;
};

/// Throws ValidationFailedError for a malformed path, as the container would.
void checkPath(std::string_view path, const char* operation);

/// Friend of the public classes, for the SDK's own construction of them.
struct Access {
    static Process process(const std::shared_ptr<SandboxState>& st);
    static LogStream logStream(std::unique_ptr<EventSource> src);
};

}  // namespace sandbox::detail
