#pragma once
/// @file
/// Reaching servers that run in a sandbox: exposed ports with preview URLs
/// (Sandbox::exposePort) and tunnels (Sandbox::tunnels()). See docs/ports.md.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox {

namespace detail {
struct SandboxState;
}

/// Options of Sandbox::exposePort().
struct ExposePortOptions {
    /// A label returned with the port (getExposedPorts()).
    std::optional<std::string> name;
    /// The host name the preview URL is written with (a wildcard domain that reaches
    /// sandboxd, e.g. "sandbox.example.com" gives https://PORT-ID-TOKEN.sandbox.example.com/;
    /// "localhost:8080" gives http://...localhost:8080/). Default: what sandboxd is reached
    /// by (its --public-url, else http://localhost:PORT of its preview listener).
    std::optional<std::string> hostname;
    /// The URL's token: 1-16 characters of [a-z0-9_]. Default: the port's earlier token when it
    /// was exposed before, else a random one of 16 characters.
    std::optional<std::string> token;
};

/// What exposePort() returns.
struct ExposedPort {
    std::string url;  ///< the preview URL: {scheme}://{port}-{sandbox id}-{token}.{host}/
    int port = 0;
    std::optional<std::string> name;
};

/// One entry of getExposedPorts(): a port that preview traffic reaches now.
struct ExposedPortInfo {
    std::string url;
    int port = 0;
    std::optional<std::string> name;
    std::string status = "active";  ///< always "active": stale exposures are not listed
};

/// Options of Tunnels::get().
struct TunnelOptions {
    /// A name for the tunnel: one DNS label (1-63 of [a-z0-9-], no leading or trailing '-').
    /// On Cloudflare's bridge a named tunnel is https://NAME.ZONE (the bridge needs a Cloudflare
    /// API token); on sandboxd the name is recorded and returned.
    std::optional<std::string> name;
};

/// A tunnel to a port of the sandbox (the reference's TunnelInfo).
struct Tunnel {
    std::string id;  ///< 8 hex digits (a quick tunnel), or the named tunnel's id
    int port = 0;
    std::string url;        ///< where it is reached: https://....trycloudflare.com/ or, on
                            ///< sandboxd without cloudflared, http://HOST:PORT/ of its listener
    std::string hostname;   ///< the URL's host (and port)
    std::string createdAt;  ///< ISO 8601
    std::optional<std::string> name;
};

/// The sandbox's tunnels (Sandbox::tunnels()). Over Cloudflare's bridge: its tunnel routes
/// (cloudflared quick tunnels, or named tunnels); on sandboxd (and the embedded default): a
/// listener on the host forwarding to the port, published through cloudflared when sandboxd
/// was started with --cloudflared. Over the agent transport: UnsupportedOperationError. Cheap
/// to copy; thread-safe.
class Tunnels {
  public:
    /// The tunnel to `port`, made when there is none (idempotent: a second get() returns the
    /// same tunnel). Throws SandboxSecurityError for a port outside 1024-65535 or 3000, or a
    /// name that is no DNS label; SandboxError `tunnel_error` when it cannot be made (options
    /// different from the existing tunnel's; CLOUDFLARED_NOT_FOUND when sandboxd was told to
    /// use a cloudflared it cannot find).
    Tunnel get(int port, const TunnelOptions& options = {}) const;
    /// The sandbox's tunnels (sandboxd only: Cloudflare's bridge has no route to list them,
    /// UnsupportedOperationError there).
    std::vector<Tunnel> list() const;
    /// Ends the tunnel to `port` (idempotent: no tunnel is no error).
    void destroy(int port) const;
    /// Ends `tunnel` (its port's tunnel).
    void destroy(const Tunnel& tunnel) const { destroy(tunnel.port); }

  private:
    friend class Sandbox;
    explicit Tunnels(std::shared_ptr<detail::SandboxState> state) : state_(std::move(state)) {}
    std::shared_ptr<detail::SandboxState> state_;
};

}  // namespace sandbox
