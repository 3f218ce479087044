#include "core/wire_network.hpp"

#include <algorithm>
#include <charconv>

namespace sandbox::core::wire {
namespace {

bool parseNumber(std::string_view s, unsigned max, unsigned& out) {
    if (s.empty() || s.size() > 5) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && out <= max;
}

// "PORT" or "PORT-PORT" (1-65535, first <= last).
bool parsePorts(std::string_view s, NetworkRule& r) {
    auto dash = s.find('-');
    unsigned a = 0, b = 0;
    if (!parseNumber(s.substr(0, dash), 65535, a) || a == 0) return false;
    b = a;
    if (dash != std::string_view::npos && (!parseNumber(s.substr(dash + 1), 65535, b) || b < a))
        return false;
    r.portFirst = static_cast<std::uint16_t>(a);
    r.portLast = static_cast<std::uint16_t>(b);
    return true;
}

bool parseIpv4(std::string_view s, std::uint32_t& out) {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
        auto dot = s.find('.');
        if ((i < 3) != (dot != std::string_view::npos)) return false;
        unsigned octet = 0;
        std::string_view part = s.substr(0, dot);
        if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0') ||
            !parseNumber(part, 255, octet))
            return false;
        v = (v << 8) | octet;
        s = dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
    }
    out = v;
    return true;
}

// 'text' for messages (built by appending: GCC 12 misreports "lit" + string at -O2).
std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out.push_back('\'');
    out.append(s);
    out.push_back('\'');
    return out;
}

// A DNS name as a rule names a host: labels of [a-z0-9-] (1-63, no hyphen at either end), two
// at least (a single label would go through the resolver's search domains), 253 at most in all,
// the last not all digits (that is an address, mistyped).
bool parseHostName(std::string_view s, std::string& out) {
    if (s.empty() || s.size() > 253) return false;
    int labels = 0;
    bool lastNumeric = false;
    for (std::size_t start = 0; start <= s.size();) {
        std::size_t dot = s.find('.', start);
        if (dot == std::string_view::npos) dot = s.size();
        std::string_view label = s.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        lastNumeric = true;
        for (char c : label) {
            const char lower = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
            const bool digit = lower >= '0' && lower <= '9';
            if (!digit && !(lower >= 'a' && lower <= 'z') && lower != '-') return false;
            lastNumeric = lastNumeric && digit;
        }
        ++labels;
        start = dot + 1;
    }
    if (labels < 2 || lastNumeric) return false;
    out.reserve(s.size());
    for (char c : s) out.push_back((c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c);
    return true;
}

}  // namespace

std::string ipv4Text(std::uint32_t v) {
    return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
           std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
}

std::string NetworkRule::text() const {
    std::string ports = portFirst == portLast
                            ? std::to_string(portFirst)
                            : std::to_string(portFirst) + "-" + std::to_string(portLast);
    switch (kind) {
        case Kind::Dns:
            return "dns";
        case Kind::HostLoopback:
            return "host-loopback:" + ports;
        case Kind::Cidr:
        case Kind::Host:
            break;
    }
    std::string out = kind == Kind::Host ? host : ipv4Text(address) + "/" + std::to_string(prefix);
    if (portFirst != 1 || portLast != 65535) out += ":" + ports;
    return out;
}

std::optional<NetworkRule> parseNetworkRule(std::string_view s, std::string& why) {
    NetworkRule r;
    if (s == "dns") {
        r.kind = NetworkRule::Kind::Dns;
        return r;
    }
    if (s.rfind("host-loopback:", 0) == 0) {
        r.kind = NetworkRule::Kind::HostLoopback;
        if (!parsePorts(s.substr(14), r)) {
            why = "host-loopback needs a port or a range: host-loopback:8080 or :8000-8099";
            return std::nullopt;
        }
        return r;
    }
    std::string_view addr = s, ports;
    if (auto colon = s.find(':'); colon != std::string_view::npos) {
        addr = s.substr(0, colon);
        ports = s.substr(colon + 1);
        if (!parsePorts(ports, r)) {
            why = quoted(s) + ": a port is 1-65535, a range FIRST-LAST";
            return std::nullopt;
        }
    }
    // A name: neither a range nor a last label of digits only (that is an address).
    const std::string_view lastLabel = addr.substr(addr.rfind('.') + 1);
    if (addr.find('/') == std::string_view::npos &&
        lastLabel.find_first_not_of("0123456789") != std::string_view::npos) {
        if (!parseHostName(addr, r.host)) {
            why = quoted(s) +
                  " is not a rule: a host name has two labels at least, each of letters, digits "
                  "and inner hyphens (pypi.org:443); other rules are A.B.C.D[/N][:PORT[-PORT]], "
                  "host-loopback:PORT[-PORT] or dns";
            return std::nullopt;
        }
        r.kind = NetworkRule::Kind::Host;
        return r;
    }
    std::string_view ip = addr;
    if (auto slash = addr.find('/'); slash != std::string_view::npos) {
        ip = addr.substr(0, slash);
        unsigned prefix = 0;
        if (!parseNumber(addr.substr(slash + 1), 32, prefix)) {
            why = quoted(s) + ": a prefix length is 0-32";
            return std::nullopt;
        }
        r.prefix = static_cast<int>(prefix);
    }
    if (!parseIpv4(ip, r.address)) {
        why = quoted(s) +
              " is not a rule: use A.B.C.D[/N][:PORT[-PORT]], NAME[:PORT[-PORT]], "
              "host-loopback:PORT[-PORT] or dns (IPv4 addresses only)";
        return std::nullopt;
    }
    const std::uint32_t mask = r.prefix == 0 ? 0 : ~std::uint32_t(0) << (32 - r.prefix);
    r.address &= mask;
    return r;
}

bool NetworkPolicy::has(NetworkRule::Kind k) const {
    for (const auto& r : allow)
        if (r.kind == k) return true;
    return false;
}

nlohmann::json toJson(const NetworkPolicy& p) {
    nlohmann::json allow = nlohmann::json::array();
    nlohmann::json resolved = nlohmann::json::object();
    for (const auto& r : p.allow) {
        allow.push_back(r.text());
        if (r.kind != NetworkRule::Kind::Host || r.addresses.empty()) continue;
        nlohmann::json& list = resolved[r.host];
        for (std::uint32_t a : r.addresses)
            if (std::find(list.begin(), list.end(), ipv4Text(a)) == list.end())
                list.push_back(ipv4Text(a));
    }
    nlohmann::json out = {{"mode", p.outbound ? "outbound" : "none"}, {"allow", allow}};
    if (!resolved.empty()) out["resolved"] = resolved;
    return out;
}

std::optional<NetworkPolicy> parseNetworkPolicy(const nlohmann::json& j, std::string& why) {
    if (!j.is_object() || !j.contains("mode") || !j["mode"].is_string()) {
        why = "the body must be {\"mode\": \"none\" | \"outbound\", \"allow\": [rules]}";
        return std::nullopt;
    }
    NetworkPolicy p;
    const std::string mode = j["mode"];
    if (mode == "outbound")
        p.outbound = true;
    else if (mode != "none") {
        why = "mode must be \"none\" or \"outbound\", got \"" + mode + "\"";
        return std::nullopt;
    }
    if (j.contains("allow") && !j["allow"].is_null()) {
        if (!j["allow"].is_array() || j["allow"].size() > 256) {
            why = "allow must be an array of at most 256 rule strings";
            return std::nullopt;
        }
        for (const auto& item : j["allow"]) {
            if (!item.is_string()) {
                why = "allow must be an array of rule strings";
                return std::nullopt;
            }
            auto rule = parseNetworkRule(item.get<std::string>(), why);
            if (!rule) return std::nullopt;
            if (std::find(p.allow.begin(), p.allow.end(), *rule) == p.allow.end())
                p.allow.push_back(*rule);
        }
    }
    if (!p.outbound && !p.allow.empty()) {
        why = "allow rules need mode \"outbound\"";
        return std::nullopt;
    }
    return p;
}

}  // namespace sandbox::core::wire
