#pragma once
// Outbound networking of a sandbox (docs/network.md): the policy a client asks for and sandboxd
// enforces, `{"mode": "none" | "outbound", "allow": [RULE, ...]}`. One definition for the SDK
// (SandboxOptions::network) and sandboxd (PUT /v1/sandbox/ID/network, --network-allow).
//
// A RULE is one of:
//   "A.B.C.D[/N][:PORT[-PORT]]"   TCP to an IPv4 address or range (all ports when none given)
//   "host-loopback:PORT[-PORT]"   TCP to a service on the host's own loopback interface, reached
//                                 from inside as 10.0.2.2 (the name `host.sandbox.internal`)
//   "NAME[:PORT[-PORT]]"          TCP to a host by its DNS name (two labels at least:
//                                 "pypi.org:443"); sandboxd resolves it when the policy is set
//                                 and pins the addresses (the sandbox's /etc/hosts and rules)
//   "dns"                         name resolution through the host's resolver (10.0.2.3)
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::core::wire {

struct NetworkRule {
    enum class Kind { Cidr, HostLoopback, Dns, Host };
    Kind kind = Kind::Cidr;
    std::uint32_t address = 0;  ///< Cidr: the network address, host byte order (masked)
    int prefix = 32;            ///< Cidr: the prefix length
    std::uint16_t portFirst = 1;
    std::uint16_t portLast = 65535;
    std::string host;  ///< Host: the name, lower case
    /// Host: the IPv4 addresses (host byte order) sandboxd resolved the name to; empty until
    /// it has. Not part of what the rule is: two rules naming the same host and ports are
    /// equal whatever their names resolved to.
    std::vector<std::uint32_t> addresses;
    /// The rule written back in its canonical form ("10.0.0.0/8:443", "host-loopback:8080",
    /// "pypi.org:443").
    std::string text() const;
    bool operator==(const NetworkRule& o) const {
        return kind == o.kind && address == o.address && prefix == o.prefix &&
               portFirst == o.portFirst && portLast == o.portLast && host == o.host;
    }
};

/// "A.B.C.D" of an IPv4 address in host byte order.
std::string ipv4Text(std::uint32_t address);

/// Parses one rule; nullopt with `why` set when it is not one of the forms above.
std::optional<NetworkRule> parseNetworkRule(std::string_view s, std::string& why);

struct NetworkPolicy {
    bool outbound = false;  ///< "outbound"; false: "none" (the sandbox's own loopback only)
    std::vector<NetworkRule> allow;
    bool operator==(const NetworkPolicy&) const = default;
    /// Whether a rule of this kind is present.
    bool has(NetworkRule::Kind k) const;
};

/// {"mode": ..., "allow": [...]} in canonical form, plus `"resolved": {NAME: ["A.B.C.D", ...]}`
/// when name rules have been resolved.
nlohmann::json toJson(const NetworkPolicy& p);
/// Parses the JSON form: `mode` required ("none" or "outbound"), `allow` an optional array of
/// rule strings (at most 256; empty with "none"). `resolved` is not read: names are resolved
/// by sandboxd, never taken from a client. nullopt with `why` set when it is invalid.
std::optional<NetworkPolicy> parseNetworkPolicy(const nlohmann::json& j, std::string& why);

}  // namespace sandbox::core::wire
