#pragma once
// Outbound networking of a sandbox (docs/network.md): the policy a client asks for and sandboxd
// enforces, `{"mode": "none" | "outbound", "allow": [RULE, ...]}`. One definition for the SDK
// (SandboxOptions::network) and sandboxd (PUT /v1/sandbox/ID/network, --network-allow).
//
// A RULE is one of:
//   "A.B.C.D[/N][:PORT[-PORT]]"   TCP to an IPv4 address or range (all ports when none given)
//   "host-loopback:PORT[-PORT]"   TCP to a service on the host's own loopback interface, reached
//                                 from inside as 10.0.2.2 (the name `host.sandbox.internal`)
//   "dns"                         name resolution through the host's resolver (10.0.2.3)
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::core::wire {

struct NetworkRule {
    enum class Kind { Cidr, HostLoopback, Dns };
    Kind kind = Kind::Cidr;
    std::uint32_t address = 0;  ///< Cidr: the network address, host byte order (masked)
    int prefix = 32;            ///< Cidr: the prefix length
    std::uint16_t portFirst = 1;
    std::uint16_t portLast = 65535;
    /// The rule written back in its canonical form ("10.0.0.0/8:443", "host-loopback:8080").
    std::string text() const;
    bool operator==(const NetworkRule&) const = default;
};

/// Parses one rule; nullopt with `why` set when it is not one of the forms above.
std::optional<NetworkRule> parseNetworkRule(std::string_view s, std::string& why);

struct NetworkPolicy {
    bool outbound = false;  ///< "outbound"; false: "none" (the sandbox's own loopback only)
    std::vector<NetworkRule> allow;
    bool operator==(const NetworkPolicy&) const = default;
    /// Whether a rule of this kind is present.
    bool has(NetworkRule::Kind k) const;
};

/// {"mode": ..., "allow": [...]} in canonical form.
nlohmann::json toJson(const NetworkPolicy& p);
/// Parses the JSON form: `mode` required ("none" or "outbound"), `allow` an optional array of
/// rule strings (at most 256; empty with "none"). nullopt with `why` set when it is invalid.
std::optional<NetworkPolicy> parseNetworkPolicy(const nlohmann::json& j, std::string& why);

}  // namespace sandbox::core::wire
