#pragma once
// Opt-in outbound networking (docs/network.md). A sandbox's network namespace has only `lo`;
// with the policy's mode "outbound", sandboxd gives it a user-mode network stack, slirp4netns
// (a tap device inside, the host's sockets outside), after loading an nftables ruleset *inside*
// the namespace that lets through only what the policy allows. The ruleset is in place before
// the interface exists and before any code of the sandbox runs; nothing inside can change it
// (no capabilities, no netlink sockets that need them, no new user namespaces).
#include <sys/types.h>
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "core/wire_network.hpp"
#include "os/process.hpp"

namespace sandbox::daemon {

/// The nftables ruleset for a sandbox's namespace under `policy`: output dropped by default;
/// loopback and established traffic pass; then DNS to slirp's resolver (`dns`), the allowed
/// host-loopback ports (10.0.2.2), nothing else of slirp's network; allowed ranges inside the
/// private, loopback, link-local and multicast ranges; those ranges refused; the other allowed
/// ranges and the addresses named hosts resolved to; everything else refused at once (a clear
/// "connection refused", not a hang). IPv6 is refused whole.
std::string nftRuleset(const core::wire::NetworkPolicy& policy);

/// The sandbox's /etc/hosts under `policy`: localhost, `host.sandbox.internal` when a
/// host-loopback rule is present, and each named host at the addresses it was resolved to, so
/// that the sandbox finds the names it is allowed at the addresses it is allowed (without `dns`).
std::string hostsFile(const core::wire::NetworkPolicy& policy);

/// Why a name rule cannot be resolved into something the sandbox may reach.
struct NameProblem {
    std::string code;     ///< NETWORK_HOST_UNRESOLVED or NETWORK_HOST_NOT_PUBLIC
    std::string message;  ///< names the host (and the address)
};

/// Whether `address` (host byte order) is outside this host's own and private networks:
/// loopback, 0/8, the private ranges, carrier-grade NAT, link-local and multicast/reserved are
/// not public.
bool isPublicAddress(std::uint32_t address);

/// Resolves the policy's name rules (their IPv4 addresses, with the host's resolver) into
/// their `addresses`. A name that does not resolve, or that resolves to an address that is not
/// public (which would let a name, and whoever answers for it, open the host's networks), is a
/// problem; the policy is then left as it was.
boost::asio::awaitable<std::optional<NameProblem>> resolveNames(core::wire::NetworkPolicy& policy);

/// Why outbound networking cannot be offered here, or "" when it can: it needs sandboxd as root
/// with bubblewrap isolation, slirp4netns, nft and nsenter, and /dev/net/tun.
std::string outboundUnavailable(bool privileged, bool bwrapIsolation);

/// A running slirp4netns: its pid (a process group of its own), and the write end of the pipe
/// whose closing makes it exit (so it also ends when sandboxd does, however sandboxd ends).
struct Outbound {
    pid_t pid = -1;
    os::Fd keepAlive;
};

/// Gives the namespaces of process `nsPid` their outbound network under `policy`: the ruleset,
/// then slirp4netns (waited for until its interface is up, 10 s at most). Throws
/// std::runtime_error with the tools' own messages.
boost::asio::awaitable<Outbound> startOutbound(pid_t nsPid,
                                               const core::wire::NetworkPolicy& policy);

/// Stops what startOutbound started (no-op when nothing runs) and reaps it.
void stopOutbound(Outbound& o);

/// The /etc/resolv.conf of a sandbox allowed `dns`: slirp4netns's resolver.
inline constexpr const char* kOutboundResolvConf = "nameserver 10.0.2.3\n";
/// The /etc/hosts line naming the host's loopback as the sandbox sees it.
inline constexpr const char* kHostLoopbackName = "host.sandbox.internal";

}  // namespace sandbox::daemon
