// Tunnels (docs/ports.md): POST and DELETE /v1/sandbox/{id}/tunnel/{port}, checked as the
// reference checks them (a port in 1024-65535 other than 3000, a DNS-label name), and sandboxd's
// own GET /v1/sandbox/{id}/tunnel (the list). A tunnel is a listener on the host (ports.hpp),
// published through cloudflared when sandboxd was given one.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "core/wire_bridge.hpp"
#include "daemon/handlers.hpp"

namespace sandbox::daemon::tunnel_routes {
using nlohmann::json;

namespace {

// JavaScript Number(s) for a port segment: white space trimmed, "" is 0, 0x/0o/0b prefixes,
// decimal with fraction and exponent, Infinity. nullopt for NaN.
std::optional<double> jsNumber(std::string_view s) {
    auto b = s.find_first_not_of(" \t\n\r\f\v");
    if (b == std::string_view::npos) return 0.0;
    s = s.substr(b, s.find_last_not_of(" \t\n\r\f\v") - b + 1);
    if (s.size() > 2 && s[0] == '0' && std::strchr("xXoObB", s[1])) {
        int base = (s[1] == 'x' || s[1] == 'X') ? 16 : (s[1] == 'o' || s[1] == 'O') ? 8 : 2;
        double v = 0;
        for (char c : s.substr(2)) {
            int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                    : std::isalpha(static_cast<unsigned char>(c))
                        ? std::tolower(static_cast<unsigned char>(c)) - 'a' + 10
                        : 99;
            if (d >= base) return std::nullopt;
            v = v * base + d;
        }
        return v;
    }
    std::string t(s);
    if (t == "Infinity" || t == "+Infinity") return HUGE_VAL;
    if (t == "-Infinity") return -HUGE_VAL;
    for (char c : t)
        if (!std::isdigit(static_cast<unsigned char>(c)) && !std::strchr("+-.eE", c))
            return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(t.c_str(), &end);
    if (!end || *end) return std::nullopt;
    return v;
}

bool validTunnelPort(std::string_view seg) {
    auto v = jsNumber(seg);
    // (In range as a double first: Infinity has no integer value.)
    return v && std::floor(*v) == *v && *v >= 0 && *v <= 65535 &&
           core::wire::isExposablePort(static_cast<long long>(*v));
}

// JavaScript's String.length of UTF-8 text: code units of UTF-16.
std::size_t utf16Length(std::string_view s) {
    std::size_t n = 0;
    for (unsigned char c : s) {
        if ((c & 0xC0) != 0x80) ++n;
        if (c >= 0xF0) ++n;  // a surrogate pair
    }
    return n;
}

// The reference's TunnelInfo, key for key.
json tunnelJson(const TunnelInfo& t) {
    json out = {{"id", t.id},
                {"port", t.port},
                {"url", t.url},
                {"hostname", t.hostname},
                {"createdAt", t.createdAt}};
    if (t.name) out["name"] = *t.name;
    return out;
}

}  // namespace

awaitable<void> tunnel(SandboxManager& mgr, Request& req, Responder& res,
                       const RouteParams& params) {
    const std::string& id = params["id"];
    const std::string& portSeg = params["port"];
    if (!validTunnelPort(portSeg))
        co_return co_await sendError(res, 400, "invalid_request", "Invalid port");
    if (req.method == "POST" && !core::trim(req.body, " \t").empty() &&
        req.body.find_first_not_of(" \t\r\n") != std::string::npos) {
        json body = json::parse(req.body, nullptr, false);
        if (body.is_discarded())
            co_return co_await sendError(res, 400, "invalid_request", "Invalid JSON body");
        if (body.is_object() && body.contains("name")) {
            const json& n = body["name"];
            if (!n.is_string())
                co_return co_await sendError(res, 400, "invalid_request",
                                             "name must be a string when provided");
            std::string name = n.get<std::string>();
            if (name.empty() || utf16Length(name) > 63) {
                const std::string message = "Tunnel name '" + name +
                                            "' must be 1\u2013"
                                            "63 characters long.";
                co_return co_await sendError(res, 400, "invalid_request", message);
            }
            if (!core::wire::isValidTunnelName(name)) {
                const std::string message =
                    "Tunnel name '" + name +
                    "' is not a valid DNS label. Use lowercase letters, digits, and internal "
                    "hyphens only (no dots, no leading/trailing hyphens).";
                co_return co_await sendError(res, 400, "invalid_request", message);
            }
        }
    }
    const auto port = static_cast<unsigned>(*jsNumber(portSeg));
    if (req.method == "DELETE") {  // idempotent: no tunnel is no error
        mgr.ports().destroyTunnel(id, port);
        co_return co_await res.send(204, "", "");
    }
    std::optional<std::string> name;
    if (json body = json::parse(req.body, nullptr, false);
        body.is_object() && body.contains("name") && body["name"].is_string())
        name = body["name"].get<std::string>();
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    std::optional<TunnelInfo> info;
    std::string failure;
    try {
        info = co_await mgr.ports().tunnel(id, port, name);
    } catch (const PortError& e) {
        failure = e.message;
    }
    if (!info) {
        const std::string message = "tunnel failed: " + failure;
        co_return co_await sendError(res, 502, "tunnel_error", message);
    }
    json reply = tunnelJson(*info);
    co_await res.sendJson(200, reply);
}

awaitable<void> list(SandboxManager& mgr, Request&, Responder& res, const RouteParams& params) {
    json out = json::array();
    for (const TunnelInfo& t : mgr.ports().tunnels(params["id"])) out.push_back(tunnelJson(t));
    json reply = {{"tunnels", std::move(out)}};
    co_await res.sendJson(200, reply);
}

}  // namespace sandbox::daemon::tunnel_routes
