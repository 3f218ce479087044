#pragma once
// The SDK test suite's backend: one binary, four ways to run it, chosen by SANDBOX_TEST_MODE:
//   embedded  sandbox::Client with nothing configured but the sandboxd binary (a private
//             sandboxd on a unix socket, started by the SDK);
//   bridge    sandboxd on an ephemeral loopback port with --api-key k, the bridge transport;
//   narrow    Cloudflare's bridge: with SANDBOX_API_URL (+ SANDBOX_API_KEY) set, the bridge
//             there (ctest runs the suite under tests/compat/bridge/with-bridge.sh, which
//             serves the real bridge Worker from @cloudflare/sandbox); the SDK finds by
//             itself that this bridge has no container API passthrough (its /health);
//   agent     sandbox-agent with a temp workspace, the agent transport.
// The backend is started once per process; tests use unique sandbox names and directories.
#include <doctest/doctest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <sandbox/sandbox.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/server_process.hpp"

namespace sandbox::testing::sdk {

using namespace std::chrono_literals;

enum class Mode { Embedded, Bridge, Narrow, Agent };

/// The mode of this run (SANDBOX_TEST_MODE; embedded when unset).
Mode mode();
std::string modeName();
inline bool isAgent() {
    return mode() == Mode::Agent;
}
inline bool isNarrow() {
    return mode() == Mode::Narrow;
}
/// The bridge transport over TCP (bridge or narrow).
inline bool isTcpBridge() {
    return mode() == Mode::Bridge || mode() == Mode::Narrow;
}
/// Commands without a session run in the sandbox's default session (not on the narrow bridge,
/// where exec is session-less unless a session is named).
inline bool hasDefaultSession() {
    return !isNarrow();
}

/// What exec() returns for output `text` when it runs in a session: the container's session
/// mode drops the one newline that ends the output, and every transport gives that (the narrow
/// bridge's raw output is normalised the same way). Session-less commands pass it on as is.
inline std::string inSession(std::string text) {
    if (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

/// The options that reach this run's backend (extra settings applied by the caller).
ClientOptions clientOptions();
/// A client shared by the tests (the embedded default starts its sandboxd once).
const Client& client();
/// The backend's URL for the bridge modes ("http://127.0.0.1:PORT"), else "".
std::string backendUrl();
/// The sandbox's workspace root: /workspace, or the agent's temp workspace in agent mode.
std::string ws();
/// A name unique in this process ("<prefix>-<n>").
std::string uniqueName(const std::string& prefix);
/// A fresh sandbox under a unique name.
Sandbox freshSandbox(const std::string& prefix = "t");
/// A shared sandbox for tests that only touch their own directory.
const Sandbox& shared();
/// A new empty directory in the shared sandbox's workspace (unique per call).
std::string freshDir(const std::string& prefix = "d");

/// Polls `cond` until it holds or `timeout` passes (bounded; short pauses between tries).
bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s);

/// Bytes 0..255 repeated to `n` bytes, shuffled by a fixed seed.
std::string allBytes(std::size_t n, unsigned seed = 1);

/// A loopback port nobody listens on (bound then closed).
int closedPort();

/// Number of processes in the sandbox whose command line contains `marker` (run through exec
/// of `sb`, so it counts in the sandbox's own process view).
int countProcesses(const Sandbox& sb, const std::string& marker);

/// Number of processes on this host whose command line contains `marker` (every sandbox's
/// processes are visible from the host's /proc).
int countHostProcesses(const std::string& marker);

/// SIGKILLs the host processes whose command line contains `marker` (a marker unique to this
/// test process): what a test leaves behind when it kills a server with SIGKILL.
void killHostProcesses(const std::string& marker);

/// SIGKILLs, from the host, the agent of sandboxd's sandbox named `id` (the process named
/// sandbox-agent whose parent, bubblewrap, binds that sandbox's workspace): the way to simulate
/// an agent crash, since nothing inside a sandbox can kill its agent. Returns how many it killed.
int killAgentOnHost(const std::string& id);

/// Writes `content` to `path` on the host (for fixtures that need files outside the sandbox).
void writeHostFile(const std::string& path, const std::string& content);

/// A minimal HTTP/1.1 server on 127.0.0.1 for faults the real servers never produce: each
/// connection gets one request; `respond(method, target, body)` returns the raw bytes to send
/// (status line, headers and body), after which the connection is closed.
class FakeServer {
  public:
    using Respond = std::function<std::string(const std::string& method, const std::string& target,
                                              const std::string& body)>;
    explicit FakeServer(Respond respond);
    ~FakeServer();
    FakeServer(const FakeServer&) = delete;
    FakeServer& operator=(const FakeServer&) = delete;
    int port() const { return port_; }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  private:
    void serve(int fd);
    Respond respond_;
    int listenFd_ = -1;
    int port_ = 0;
    std::thread thread_;
};

/// A raw HTTP response: status line, Content-Type, Content-Length (or chunked when `chunks`).
std::string httpResponse(int status, const std::string& contentType, const std::string& body);
std::string chunkedResponse(int status, const std::string& contentType,
                            const std::vector<std::string>& chunks, bool terminate = true);

}  // namespace sandbox::testing::sdk
