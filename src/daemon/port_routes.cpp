// Exposed ports and preview URLs (docs/ports.md), sandboxd's own routes (the reference keeps
// them in its Durable Object, off the bridge):
//   POST   /v1/sandbox/{id}/port/{port}           {name?, token?, hostname?} -> {url, port, name?}
//   DELETE /v1/sandbox/{id}/port/{port}           204, exposed or not
//   GET    /v1/sandbox/{id}/port/{port}           {port, exposed}
//   POST   /v1/sandbox/{id}/port/{port}/validate  {token} -> {valid} (constant time)
//   GET    /v1/sandbox/{id}/port[?hostname=H]     {ports: [{url, port, name?, status}]}
#include <nlohmann/json.hpp>

#include "core/json_util.hpp"
#include "daemon/bridge_routes.hpp"
#include "daemon/handlers.hpp"

namespace sandbox::daemon::port_routes {
using nlohmann::json;

namespace {

// A port segment: decimal digits only, then the exposable range.
std::optional<unsigned> routePort(const std::string& seg) {
    if (seg.empty() || seg.size() > 5) return std::nullopt;
    unsigned v = 0;
    for (char c : seg) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (!isExposablePort(v)) return std::nullopt;
    return v;
}

awaitable<void> invalidPort(Responder& res, const std::string& seg) {
    const std::string message =
        "Invalid port '" + seg + "': use 1024-65535, except 3000 (reserved)";
    co_await sendError(res, 400, "INVALID_PORT", message);
}

json exposureJson(const std::string& url, const Exposure& e) {
    json out = {{"url", url}, {"port", e.port}};
    if (e.name) out["name"] = *e.name;
    return out;
}

// An optional string member of a JSON body: false (with the answer sent) when it is there and
// not a string.
bool optionalString(const json& body, const char* key, std::optional<std::string>& out) {
    if (!body.contains(key) || body[key].is_null()) return true;
    if (!body[key].is_string()) return false;
    out = body[key].get<std::string>();
    return true;
}

// A host name as exposePort takes it: DNS characters with an optional :port, or [::1]:port.
bool validHostname(const std::string& h) {
    if (h.empty() || h.size() > 253) return false;
    std::string_view host = h;
    if (host.rfind("[::1]", 0) == 0) {
        host.remove_prefix(5);
        return host.empty() || (host[0] == ':' && host.size() > 1 &&
                                host.find_first_not_of("0123456789", 1) == std::string::npos);
    }
    auto colon = host.find(':');
    if (colon != std::string_view::npos) {
        auto port = host.substr(colon + 1);
        if (port.empty() || port.size() > 5 ||
            port.find_first_not_of("0123456789") != std::string_view::npos)
            return false;
        host = host.substr(0, colon);
    }
    if (host.empty() || host.front() == '.' || host.front() == '-') return false;
    for (char c : host)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-'))
            return false;
    return true;
}

}  // namespace

awaitable<void> expose(SandboxManager& mgr, Request& req, Responder& res,
                       const RouteParams& params) {
    const std::string& id = params["id"];
    auto port = routePort(params["port"]);
    if (!port) co_return co_await invalidPort(res, params["port"]);
    json body = req.body.empty() ? json::object() : core::parseJson(req.body);
    if (!body.is_object())
        co_return co_await sendError(res, 400, "VALIDATION_FAILED",
                                     "the body must be a JSON object");
    std::optional<std::string> name, token, hostname;
    if (!optionalString(body, "name", name) || !optionalString(body, "token", token) ||
        !optionalString(body, "hostname", hostname))
        co_return co_await sendError(res, 400, "VALIDATION_FAILED",
                                     "name, token and hostname must be strings when given");
    if (hostname && !validHostname(*hostname))
        co_return co_await sendError(res, 400, "VALIDATION_FAILED",
                                     "hostname must be a host name with an optional :port (no "
                                     "scheme, no path), e.g. sandbox.example.com");
    if (hostname && hostname->ends_with(".workers.dev"))
        co_return co_await sendError(res, 400, "CUSTOM_DOMAIN_REQUIRED",
                                     "preview URLs need a custom domain, not .workers.dev");
    if (mgr.ports().config().previewBase.empty() && !hostname)
        co_return co_await sendError(
            res, 503, "PREVIEW_UNAVAILABLE",
            "sandboxd has no TCP listener for preview URLs: start it with --preview-listen "
            "HOST:PORT, or listen on TCP");
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    Exposure e;
    std::optional<PortError> refused;
    try {
        e = mgr.ports().expose(id, sb->runtime, *port, token, name);
    } catch (const PortError& err) {
        refused = err;
    }
    if (refused)
        co_return co_await sendError(res, refused->status, refused->code, refused->message);
    json reply = exposureJson(mgr.ports().urlOf(id, e, hostname), e);
    co_await res.sendJson(200, reply);
}

awaitable<void> unexpose(SandboxManager& mgr, Request&, Responder& res, const RouteParams& params) {
    auto port = routePort(params["port"]);
    if (!port) co_return co_await invalidPort(res, params["port"]);
    mgr.ports().unexpose(params["id"], *port);
    co_await res.send(204, "", "");
}

awaitable<void> status(SandboxManager& mgr, Request&, Responder& res, const RouteParams& params) {
    auto port = routePort(params["port"]);
    if (!port) co_return co_await invalidPort(res, params["port"]);
    const bool exposed = mgr.ports().find(params["id"], *port) != nullptr;
    json reply = {{"port", *port}, {"exposed", exposed}};
    co_await res.sendJson(200, reply);
}

awaitable<void> validate(SandboxManager& mgr, Request& req, Responder& res,
                         const RouteParams& params) {
    auto port = routePort(params["port"]);
    if (!port) co_return co_await invalidPort(res, params["port"]);
    json body = core::parseJson(req.body);
    if (!body.is_object() || !body.contains("token") || !body["token"].is_string())
        co_return co_await sendError(res, 400, "VALIDATION_FAILED",
                                     "the body must be {\"token\": string}");
    const Exposure* e = mgr.ports().find(params["id"], *port);
    const std::string token = body["token"];
    const bool valid = e && constantTimeEquals(e->token, token);
    json reply = {{"valid", valid}};
    co_await res.sendJson(200, reply);
}

awaitable<void> list(SandboxManager& mgr, Request& req, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    std::optional<std::string> hostname = req.queryParam("hostname");
    if (hostname && hostname->empty()) hostname.reset();
    json ports = json::array();
    auto sb = mgr.find(id);
    if (sb && !sb->dead)
        for (const Exposure& e : mgr.ports().active(id, sb->runtime)) {
            json item = exposureJson(mgr.ports().urlOf(id, e, hostname), e);
            item["status"] = "active";
            ports.push_back(std::move(item));
        }
    json reply = {{"ports", std::move(ports)}};
    co_await res.sendJson(200, reply);
}

}  // namespace sandbox::daemon::port_routes
