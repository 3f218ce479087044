// Exposed ports, preview URLs and tunnels (docs/ports.md): the public methods check their
// arguments as the reference does (SandboxSecurityError), then call the bridge's routes through
// BridgePorts: sandboxd's /v1/sandbox/ID/port... and the tunnel routes every bridge has.
#include <nlohmann/json.hpp>

#include "client/client_impl.hpp"
#include "client/connection.hpp"
#include "client/container_connection.hpp"
#include "client/error_mapping.hpp"
#include "client/narrow_bridge.hpp"
#include "client/requester.hpp"
#include "core/wire_bridge.hpp"
#include "core/wire_network.hpp"
#include "sandbox/client.hpp"

namespace sandbox {
using nlohmann::json;

namespace {

void checkPort(int port) {
    if (!core::wire::isExposablePort(port))
        throw SandboxSecurityError("INVALID_PORT",
                                   "Port " + std::to_string(port) +
                                       " cannot be used: use 1024-65535, except 3000 (reserved)",
                                   400);
}

void checkTunnelName(const std::string& name) {
    if (!core::wire::isValidTunnelName(name))
        throw SandboxSecurityError("INVALID_TUNNEL_NAME",
                                   "Tunnel name '" + name +
                                       "' is not a DNS label: 1-63 of a-z, 0-9 and '-', no "
                                       "leading or trailing '-'",
                                   400);
}

std::optional<std::string> optionalString(const json& j, const char* key) {
    if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
    return std::nullopt;
}

Tunnel tunnelOf(const json& j) {
    Tunnel t;
    t.id = j.at("id").get<std::string>();
    t.port = j.at("port").get<int>();
    t.url = j.at("url").get<std::string>();
    t.hostname = j.value("hostname", "");
    t.createdAt = j.value("createdAt", "");
    t.name = optionalString(j, "name");
    return t;
}

}  // namespace

namespace detail {

BridgePorts& Connection::ports(const char* method, bool exposures) {
    if (exposures)
        unsupported(method,
                    "sandboxd (the embedded default, or SANDBOX_API_URL pointing at sandboxd): "
                    "Cloudflare serves preview URLs from a Worker's proxyToSandbox, which no HTTP "
                    "API reaches");
    unsupported(method,
                "a bridge (SANDBOX_API_URL, or the embedded default): the tunnel routes are the "
                "bridge's");
}

void Connection::applyNetwork(const NetworkOptions&) {
    unsupported("SandboxOptions::network",
                "sandboxd (the embedded default, or SANDBOX_API_URL pointing at sandboxd): only "
                "sandboxd gives a sandbox a network");
}

void ContainerConnection::applyNetwork(const NetworkOptions& o) {
    if (route_ == ContainerRoute::Direct) return Connection::applyNetwork(o);
    core::wire::NetworkPolicy policy;
    policy.outbound = o.outbound;
    for (const auto& text : o.allow) {
        std::string why;
        auto rule = core::wire::parseNetworkRule(text, why);
        if (!rule)
            throw ValidationFailedError("VALIDATION_FAILED", "SandboxOptions::network: " + why,
                                        400);
        policy.allow.push_back(*rule);
    }
    if (!o.outbound && !o.allow.empty())
        throw ValidationFailedError(
            "VALIDATION_FAILED", "SandboxOptions::network: allow rules need outbound = true", 400);
    req_.call(root_, "PUT", "/v1/sandbox/" + info_->bridgeId + "/network",
              jsonBody(core::wire::toJson(policy), "network.set"), {}, "network.set", true);
}

ExposedPort BridgePorts::expose(int port, const ExposePortOptions& o) {
    json body = json::object();
    if (o.name) body["name"] = *o.name;
    if (o.token) body["token"] = *o.token;
    if (o.hostname) body["hostname"] = *o.hostname;
    client::HttpResponse r;
    try {
        r = req_.call(root_, "POST", base() + "/port/" + std::to_string(port),
                      jsonBody(body, "ports.expose"), {}, "ports.expose", true);
    } catch (const SandboxError& e) {
        // The server's own checks of a port or token (a token another port uses): the
        // reference's class for them.
        if (e.code() == "INVALID_PORT" || e.code() == "INVALID_TOKEN")
            throw SandboxSecurityError(e.code(), e.what(), e.httpStatus());
        throw;
    }
    json j = json::parse(r.body);
    return ExposedPort{j.at("url").get<std::string>(), j.at("port").get<int>(),
                       optionalString(j, "name")};
}

void BridgePorts::unexpose(int port) {
    req_.call(root_, "DELETE", base() + "/port/" + std::to_string(port), "", {}, "ports.unexpose",
              true);
}

std::vector<ExposedPortInfo> BridgePorts::exposed(const std::optional<std::string>& hostname) {
    std::string target = base() + "/port";
    if (hostname) target += "?hostname=" + bridgePathPart(*hostname);
    auto r = req_.call(root_, "GET", target, "", {}, "ports.list", true);
    std::vector<ExposedPortInfo> out;
    const json reply = json::parse(r.body);  // kept: the loop walks a member of it
    for (const json& p : reply.at("ports"))
        out.push_back(ExposedPortInfo{p.at("url").get<std::string>(), p.at("port").get<int>(),
                                      optionalString(p, "name"), p.value("status", "active")});
    return out;
}

bool BridgePorts::isExposed(int port) {
    auto r = req_.call(root_, "GET", base() + "/port/" + std::to_string(port), "", {},
                       "ports.status", true);
    return json::parse(r.body).at("exposed").get<bool>();
}

bool BridgePorts::validate(int port, std::string_view token) {
    json body = {{"token", token}};
    auto r = req_.call(root_, "POST", base() + "/port/" + std::to_string(port) + "/validate",
                       jsonBody(body, "ports.validate"), {}, "ports.validate", true);
    return json::parse(r.body).at("valid").get<bool>();
}

Tunnel BridgePorts::tunnel(int port, const TunnelOptions& o) {
    json body = json::object();
    if (o.name) body["name"] = *o.name;
    auto r = req_.call(root_, "POST", base() + "/tunnel/" + std::to_string(port),
                       jsonBody(body, "tunnels.get"), {}, "tunnels.get", true);
    return tunnelOf(json::parse(r.body));
}

std::vector<Tunnel> BridgePorts::tunnels() {
    auto r = req_.call(root_, "GET", base() + "/tunnel", "", {}, "tunnels.list", true);
    std::vector<Tunnel> out;
    const json reply = json::parse(r.body);
    for (const json& t : reply.at("tunnels")) out.push_back(tunnelOf(t));
    return out;
}

void BridgePorts::destroyTunnel(int port) {
    req_.call(root_, "DELETE", base() + "/tunnel/" + std::to_string(port), "", {},
              "tunnels.destroy", true);
}

}  // namespace detail

ExposedPort Sandbox::exposePort(int port, const ExposePortOptions& options) const try {
    checkPort(port);
    if (options.token && !core::wire::isValidPortToken(*options.token))
        throw SandboxSecurityError(
            "INVALID_TOKEN",
            "A port token is 1-16 characters of a-z, 0-9 and _ (got '" + *options.token + "')",
            400);
    if (options.hostname && options.hostname->ends_with(".workers.dev"))
        throw CustomDomainRequiredError(
            "CUSTOM_DOMAIN_REQUIRED",
            "Preview URLs need a custom domain with wildcard DNS, not .workers.dev", 400);
    return state_->conn().ports("exposePort()", true).expose(port, options);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "exposePort");
}

void Sandbox::unexposePort(int port) const try {
    checkPort(port);
    state_->conn().ports("unexposePort()", true).unexpose(port);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "unexposePort");
}

std::vector<ExposedPortInfo> Sandbox::getExposedPorts(
    const std::optional<std::string>& hostname) const try {
    return state_->conn().ports("getExposedPorts()", true).exposed(hostname);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "getExposedPorts");
}

bool Sandbox::isPortExposed(int port) const try {
    if (!core::wire::isExposablePort(port)) return false;
    return state_->conn().ports("isPortExposed()", true).isExposed(port);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "isPortExposed");
}

bool Sandbox::validatePortToken(int port, std::string_view token) const try {
    if (!core::wire::isExposablePort(port) || !core::wire::isValidPortToken(token)) return false;
    return state_->conn().ports("validatePortToken()", true).validate(port, token);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "validatePortToken");
}

Tunnels Sandbox::tunnels() const {
    return Tunnels(state_);
}

Tunnel Tunnels::get(int port, const TunnelOptions& options) const try {
    checkPort(port);
    if (options.name) checkTunnelName(*options.name);
    return state_->conn().ports("tunnels().get()", false).tunnel(port, options);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "tunnels().get");
}

std::vector<Tunnel> Tunnels::list() const try {
    auto& p = state_->conn().ports("tunnels().list()", false);
    if (!p.sandboxd())
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            "tunnels().list() needs sandboxd: Cloudflare's bridge has no route that lists "
            "tunnels (keep what tunnels().get() returned)",
            0, json{{"method", "tunnels().list()"}});
    return p.tunnels();
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "tunnels().list");
}

void Tunnels::destroy(int port) const try {
    checkPort(port);
    state_->conn().ports("tunnels().destroy()", false).destroyTunnel(port);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "tunnels().destroy");
}

}  // namespace sandbox
