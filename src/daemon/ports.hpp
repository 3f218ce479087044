#pragma once
// Reaching servers inside sandboxes (docs/ports.md): exposed ports and their preview URLs, and
// tunnels. sandboxd never enters a sandbox's network namespace: every forwarded connection is
// a CONNECT through the sandbox's agent (agent/relay.hpp), which is in it already.
//
// Exposures are kept per sandbox id for the daemon's lifetime, across restarts of the sandbox
// (as the reference keeps them in its Durable Object's storage): an exposure is *active* for
// the launch of the sandbox it was made in, and a preview URL of an earlier launch is answered
// 410 STALE_PREVIEW_URL until exposePort is called again (the same token is reused).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/wire_bridge.hpp"
#include "server/raw_stream.hpp"

namespace sandbox::daemon {

namespace net = boost::asio;
class SandboxManager;

/// A preview URL's first label, `{port}-{id}-{token}`, parsed from a Host header (the port
/// 4-5 digits, the id and the token split at the last hyphen, the token [a-z0-9_]{1,16});
/// lower-cased. nullopt when the host is not a preview URL's (and the request is sandboxd's).
struct PreviewHost {
    unsigned port = 0;
    std::string id;
    std::string token;
};
std::optional<PreviewHost> parsePreviewHost(std::string_view host);

/// The path form of a preview URL, `/preview/{port}-{id}-{token}/REST`, for clients that cannot
/// set Host and for a sandboxd reached by an IP address (where no label can go in front).
inline constexpr std::string_view kPreviewPathPrefix = "/preview/";
struct PreviewPath {
    PreviewHost host;
    std::string label;  ///< `{port}-{id}-{token}` as it was written
    /// What follows the label: the target the sandbox's server is asked for ("/x?y"), or "" or
    /// "?QUERY" when the label ends the path (the URL then needs its slash).
    std::string rest;
};
/// Parses a request target; nullopt when it is not a preview URL's path.
std::optional<PreviewPath> parsePreviewPath(std::string_view target);

/// A path-form request's head as the sandbox's server gets it: `target` for the request-target,
/// and, unless the request upgrades its protocol (a WebSocket), `Connection: close` in place of
/// its hop-by-hop headers: a later request on the connection would carry the prefix again, so
/// each is made on a connection of its own. `head` ends with its blank line.
std::string rewritePreviewHead(std::string_view head, std::string_view target);

/// Whether a descriptor an agent passed is what sandboxd asked for: a connected TCP socket (IPv4
/// or IPv6, stream, not listening). Anything else (a file, a pipe, a unix socket, a listener)
/// is refused: the agent runs inside the sandbox and is not trusted with sandboxd's
/// descriptors. Returns the socket's address family, or 0 when refused.
int acceptablePassedSocket(int fd);

using core::wire::isExposablePort;   // 1024-65535, except 3000
using core::wire::isValidPortToken;  // 1-16 of [a-z0-9_]

/// Why a port call is refused: an HTTP status, a container API code and a message.
struct PortError {
    int status = 400;
    std::string code;
    std::string message;
};

struct Exposure {
    unsigned port = 0;
    std::string token;
    std::optional<std::string> name;
    std::uint64_t runtime = 0;  ///< the launch it is active for
    std::string createdAt;
};

/// A tunnel: a host listener forwarding to a port in the sandbox.
struct TunnelInfo {
    std::string id;  ///< 8 hex digits
    unsigned port = 0;
    std::string url;
    std::string hostname;
    std::string createdAt;
    std::optional<std::string> name;
};

/// The connections being forwarded for one sandbox, so that a revoked exposure, a destroyed
/// tunnel or a destroyed sandbox ends them at once.
class LiveRelays {
  public:
    struct Entry {
        unsigned port = 0;
        bool tunnel = false;
        server::RawStream* a = nullptr;
        server::RawStream* b = nullptr;
    };
    std::shared_ptr<Entry> add(unsigned port, bool tunnel, server::RawStream* a,
                               server::RawStream* b);
    /// Closes the relays to `port` (every port when nullopt) of the kind asked.
    void close(std::optional<unsigned> port, std::optional<bool> tunnel);
    std::size_t count();

  private:
    std::vector<std::weak_ptr<Entry>> entries_;
};

/// Where sandboxd's preview and tunnel traffic comes in and how its URLs are written.
struct PortsConfig {
    /// The base of preview URLs: "http://localhost:PORT" for the preview listener, or what
    /// --public-url said ("https://sandbox.example.com"). Empty: no preview listener.
    std::string previewBase;
    /// The address tunnels listen on (--tunnel-host; loopback by default).
    std::string tunnelHost = "127.0.0.1";
    /// A cloudflared binary (--cloudflared): tunnels are then quick tunnels through it.
    std::string cloudflared;
};

/// The daemon's exposures and tunnels. Single-threaded, on sandboxd's io_context.
class PortRegistry {
  public:
    explicit PortRegistry(SandboxManager& mgr) : mgr_(mgr) {}
    PortsConfig& config() { return cfg_; }

    /// Exposes `port` of sandbox `id` in its launch `runtime` with `token` (a custom one, or
    /// nullopt: the port's earlier token, else a random one). Throws PortError.
    Exposure expose(const std::string& id, std::uint64_t runtime, unsigned port,
                    std::optional<std::string> token, std::optional<std::string> name);
    /// Revokes the port's token and ends its preview connections; false when it was not
    /// exposed.
    bool unexpose(const std::string& id, unsigned port);
    /// The exposures active in launch `runtime`.
    std::vector<Exposure> active(const std::string& id, std::uint64_t runtime) const;
    const Exposure* find(const std::string& id, unsigned port) const;
    /// The URL of an exposure: `hostname` as the client gave it, or the configured base; with
    /// the label in front of the host name, or in the path form when the host is an IP address.
    std::string urlOf(const std::string& id, const Exposure& e,
                      const std::optional<std::string>& hostname) const;

    /// What a preview request with this Host gets.
    enum class Access { NotPreview, InvalidToken, Stale, Active };
    struct Check {
        Access access = Access::NotPreview;
        PreviewHost host;
    };
    Check check(std::string_view hostHeader) const;
    /// The same for a preview label (the Host's, or a path form's).
    Check check(const PreviewHost& host) const;

    /// Forwards `client` to `port` inside sandbox `id` through its agent: the request head and
    /// the bytes after it first, when given. Answers 502 (JSON) when the sandbox is not
    /// running or nothing listens on the port.
    net::awaitable<void> forward(std::string id, unsigned port, bool tunnel,
                                 std::unique_ptr<server::RawStream> client, std::string head,
                                 std::string early);

    /// The sandbox's tunnel to `port`, made when there is none. Throws PortError ("created
    /// with different options", CLOUDFLARED_NOT_FOUND, a listener that cannot be made).
    net::awaitable<TunnelInfo> tunnel(const std::string& id, unsigned port,
                                      std::optional<std::string> name);
    std::vector<TunnelInfo> tunnels(const std::string& id) const;
    /// Ends the tunnel to `port` and its connections; false when there was none.
    bool destroyTunnel(const std::string& id, unsigned port);

    /// The sandbox's launch ended (destroyed, or about to be relaunched): its forwarded
    /// connections end; with `destroyed` its tunnels too. Exposures stay (stale).
    void launchEnded(const std::string& id, bool destroyed);

  private:
    struct Tunnel;
    struct PerSandbox {
        std::map<unsigned, Exposure> exposures;
        std::map<unsigned, std::shared_ptr<Tunnel>> tunnels;
        LiveRelays relays;
    };
    net::awaitable<void> acceptLoop(std::string id, std::shared_ptr<Tunnel> t);

    SandboxManager& mgr_;
    PortsConfig cfg_;
    std::map<std::string, PerSandbox> sandboxes_;
};

}  // namespace sandbox::daemon
