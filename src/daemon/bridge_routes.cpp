// sandboxd's API, every route on one page: the table in BridgeApi::declareRoutes(), the
// handlers in a file per resource (handlers.hpp). Routing follows the reference bridge
// (docs/sandboxd.md): case-sensitive and strict about trailing slashes; the top level and the
// agent passthrough on the path as sent; a sandbox's own routes on the path after its id as the
// bridge decodes it (percent-decoded except reserved characters, then dot segments resolved:
// paths.hpp). Before any route: the id check, then authentication (refuseFromHead). A request
// no route takes, wrong method included, is the plain-text 404.
#include "daemon/bridge_routes.hpp"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "core/wire_bridge.hpp"
#include "daemon/handlers.hpp"
#include "daemon/openapi.hpp"
#include "daemon/paths.hpp"

namespace sandbox::daemon {
using server::Request;
using server::Responder;
using server::RouteParams;

bool authorized(const SandboxManager& mgr, const Request& req, bool caseInsensitivePrefix) {
    const std::string& key = mgr.config().apiKey;
    if (key.empty()) return true;
    int count = 0;
    std::string value;
    for (const auto& [k, v] : req.headers)
        if (k == "authorization") {
            value = v;
            ++count;
        }
    if (count != 1) return false;
    value = core::trim(value, " \t");
    if (value.size() < 7) return false;
    std::string prefix = value.substr(0, 7);
    if (caseInsensitivePrefix)
        for (auto& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (prefix != (caseInsensitivePrefix ? "bearer " : "Bearer ")) return false;
    return constantTimeEquals(std::string_view(value).substr(7), key);
}

// The route files are one compilation unit: file-private helpers live in this file's namespace.
namespace bridge_routes {
namespace {

bool isOpenApiPath(std::string_view path) {
    return path == "/v1/openapi.json" || path == "/v1/openapi" || path == "/v1/openapi.html";
}

// The case-sensitive "Bearer " prefix (pool and OpenAPI routes); the OpenAPI routes also take
// ?token=.
bool authorizedStrict(const SandboxManager& mgr, const Request& req, bool queryToken) {
    if (authorized(mgr, req, false)) return true;
    const std::string& key = mgr.config().apiKey;
    if (queryToken)
        if (auto t = core::wire::firstQueryParam(req.query, "token");
            t && constantTimeEquals(*t, key))
            return true;
    return false;
}

}  // namespace
}  // namespace bridge_routes

std::optional<HeadRefusal> refuseFromHead(const SandboxManager& mgr, const Request& req) {
    using bridge_routes::authorizedStrict;
    using bridge_routes::isOpenApiPath;
    const std::string& path = req.path;
    const HeadRefusal unauthorized{401, "unauthorized", "Unauthorized"};
    if (path.rfind("/v1/pool/", 0) == 0)
        return authorizedStrict(mgr, req, false) ? std::nullopt : std::optional(unauthorized);
    if (isOpenApiPath(path)) {
        // Other methods are 404 before authentication, as in the reference.
        if (req.method != "GET" && req.method != "HEAD") return std::nullopt;
        return authorizedStrict(mgr, req, true) ? std::nullopt : std::optional(unauthorized);
    }
    if (path == "/v1/sandbox" || path.rfind("/v1/sandbox/", 0) == 0) {
        // Raw-segment id check first, then auth (as the reference).
        std::string rest = path.size() > 12 ? path.substr(12) : "";
        std::string idRaw = rest.substr(0, rest.find('/'));
        if (!idRaw.empty() && !isValidSandboxId(idRaw))
            return HeadRefusal{400, "invalid_request", "Invalid sandbox ID format"};
        if (!authorized(mgr, req, true)) return unauthorized;
    }
    return std::nullopt;
}

namespace {

// Which preview URL a request is for: its Host's label, else its path's (the path form);
// `target` is then what the sandbox's server is asked for ("" for the Host form).
struct PreviewRequest {
    PortRegistry::Check check;
    std::optional<PreviewPath> path;
};

PreviewRequest previewRequestOf(const SandboxManager& mgr, const Request& head) {
    PreviewRequest out;
    if (auto host = head.header("host")) out.check = mgr.ports().check(*host);
    if (out.check.access != PortRegistry::Access::NotPreview) return out;
    out.path = parsePreviewPath(head.target);
    if (out.path) out.check = mgr.ports().check(out.path->host);
    return out;
}

}  // namespace

std::optional<server::CannedResponse> previewRefusal(const SandboxManager& mgr,
                                                     const Request& head) {
    const PreviewRequest preview = previewRequestOf(mgr, head);
    const auto& check = preview.check;
    server::CannedResponse r;
    switch (check.access) {
        case PortRegistry::Access::NotPreview:
            return std::nullopt;
        case PortRegistry::Access::Active:
            // The path form's label must be followed by a slash, or the page's relative links
            // would leave the prefix: sent to the same URL with it.
            if (!preview.path || (!preview.path->rest.empty() && preview.path->rest[0] == '/'))
                return std::nullopt;
            r.status = 308;
            r.contentType = "text/plain";
            r.headers.emplace_back("Location", std::string(kPreviewPathPrefix) +
                                                   preview.path->label + "/" + preview.path->rest);
            break;
        case PortRegistry::Access::InvalidToken:
            r.status = 404;
            r.body =
                errorBody("Invalid token: port " + std::to_string(check.host.port) +
                              " of sandbox " + check.host.id + " is not exposed with this token",
                          "INVALID_TOKEN");
            break;
        case PortRegistry::Access::Stale:
            r.status = 410;
            r.body = errorBody("This preview URL is from before sandbox " + check.host.id +
                                   " restarted: expose port " + std::to_string(check.host.port) +
                                   " again (the URL stays the same)",
                               "STALE_PREVIEW_URL");
            break;
    }
    return r;
}

std::function<server::RawHandler(const Request&)> previewHijack(SandboxManager& mgr) {
    return [&mgr](const Request& head) -> server::RawHandler {
        const PreviewRequest preview = previewRequestOf(mgr, head);
        if (preview.check.access != PortRegistry::Access::Active) return nullptr;
        if (preview.path && (preview.path->rest.empty() || preview.path->rest[0] != '/'))
            return nullptr;  // previewRefusal redirects it
        const std::string target = preview.path ? preview.path->rest : std::string();
        return [&mgr, check = preview.check, target](std::unique_ptr<server::RawStream> client,
                                                     std::string rawHead,
                                                     std::string early) -> awaitable<void> {
            std::string forwarded =
                target.empty() ? std::move(rawHead) : rewritePreviewHead(rawHead, target);
            std::string id = check.host.id;
            const unsigned port = check.host.port;
            co_await mgr.ports().forward(std::move(id), port, false, std::move(client),
                                         std::move(forwarded), std::move(early));
        };
    };
}

server::Handler makePreviewOnlyRouter() {
    return [](Request&, Responder& res) -> awaitable<void> { co_await sendNotFound(res); };
}

std::function<std::optional<server::CannedResponse>(const Request&)> bridgeHeadCheck(
    const SandboxManager& mgr) {
    return [&mgr](const Request& head) -> std::optional<server::CannedResponse> {
        if (auto preview = previewRefusal(mgr, head)) return preview;
        auto refusal = refuseFromHead(mgr, head);
        if (!refusal) return std::nullopt;
        server::CannedResponse r;
        r.status = refusal->status;
        r.body = errorBody(refusal->message, refusal->code);
        return r;
    };
}

std::string bridgeRefusalBody(const server::Refusal& refusal) {
    const int st = refusal.status;
    std::string_view code = st == 413   ? "payload_too_large"
                            : st == 503 ? "capacity_exceeded"
                            : st == 401 ? "unauthorized"
                            : st < 500  ? "invalid_request"
                                        : "internal_error";
    return errorBody(refusal.message, code);
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
    unsigned char diff = static_cast<unsigned char>(a.size() != b.size());
    std::size_t n = std::max(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i) {
        unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
        unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
        diff |= static_cast<unsigned char>(x ^ y);
    }
    return diff == 0;
}

namespace bridge_routes {
namespace {

// ---- about the daemon ------------------------------------------------------------------------

awaitable<void> health(SandboxManager& mgr, Request&, Responder& res, const RouteParams&) {
    // {"ok":true} as the bridge, plus where each sandbox's container API is (the SDK reads it
    // to tell sandboxd from Cloudflare's bridge) and what isolates this host's sandboxes.
    const IsolationReport& iso = mgr.isolation();
    nlohmann::ordered_json body = {{"ok", true},
                                   {"containerApi", "/v1/sandbox/{id}/agent"},
                                   {"isolation",
                                    {{"mode", iso.mode},
                                     {"identity", iso.identity},
                                     {"seccomp", iso.seccomp},
                                     {"cgroups", iso.cgroups},
                                     {"workspace", iso.workspace}}}};
    co_await res.send(200, "application/json", body.dump());
}

awaitable<void> openApiDocument(SandboxManager&, Request&, Responder& res, const RouteParams&) {
    std::string doc = openApiJson();
    co_await res.send(200, "application/json", std::move(doc));
}

awaitable<void> openApiPage(SandboxManager&, Request&, Responder& res, const RouteParams&) {
    std::string html = openApiHtml();
    co_await res.send(200, "text/html; charset=utf-8", std::move(html));
}

// ---- the table ------------------------------------------------------------------------------

using Route =
    std::function<awaitable<void>(SandboxManager&, Request&, Responder&, const RouteParams&)>;

class BridgeApi {
  public:
    explicit BridgeApi(SandboxManager& mgr) : mgr_(mgr) { declareRoutes(); }
    awaitable<void> dispatch(Request& req, Responder& res);

  private:
    void declareRoutes();
    /// /v1/sandbox/{id}/{sub*}: a route of `sandbox_` on the decoded `sub`.
    awaitable<void> sandboxRoute(Request& req, Responder& res, const RouteParams& outer);

    SandboxManager& mgr_;
    server::Router<Route> api_;      ///< on the path as sent
    server::Router<Route> sandbox_;  ///< under /v1/sandbox/{id}, on the decoded rest
};

void BridgeApi::declareRoutes() {
    // About the daemon (this file); its OpenAPI document (openapi.hpp).
    api_.add("GET,HEAD", "/health", health);
    api_.add("GET,HEAD", "/v1/openapi.json", openApiDocument);
    api_.add("GET,HEAD", "/v1/openapi", openApiPage);
    api_.add("GET,HEAD", "/v1/openapi.html", openApiPage);

    // Sandboxes and the warm pool (sandbox_routes.cpp).
    api_.add("POST", "/v1/sandbox", sandbox_routes::create);
    api_.add("DELETE", "/v1/sandbox/{id}", sandbox_routes::destroy);
    api_.add("GET,HEAD", "/v1/pool/stats", sandbox_routes::poolStats);
    api_.add("POST", "/v1/pool/prime", sandbox_routes::poolPrime);
    api_.add("POST", "/v1/pool/shutdown-prewarmed", sandbox_routes::poolShutdownPrewarmed);

    // The agent passthrough, any method, HTTP or WebSocket (agent_routes.cpp).
    api_.add("*", "/v1/sandbox/{id}/agent/{path*}", agent_routes::passthrough);
    // Every other route of a sandbox: below, on the decoded path after its id.
    api_.add("*", "/v1/sandbox/{id}/{sub*}",
             [this](SandboxManager&, Request& req, Responder& res, const RouteParams& params) {
                 return sandboxRoute(req, res, params);
             });

    // A sandbox's routes (under /v1/sandbox/{id}).
    sandbox_.add("GET", "/running", sandbox_routes::running);
    sandbox_.add("POST", "/exec", exec_routes::exec);
    sandbox_.add("GET", "/pty", pty_routes::pty);     // pty_proxy.cpp
    sandbox_.add("GET", "/file", file_routes::read);  // an empty path: 400
    sandbox_.add("GET", "/file/{path*}", file_routes::read);
    sandbox_.add("PUT", "/file", file_routes::write);
    sandbox_.add("PUT", "/file/{path*}", file_routes::write);
    sandbox_.add("POST", "/persist", file_routes::persist);
    sandbox_.add("POST", "/hydrate", file_routes::hydrate);
    sandbox_.add("POST", "/session", session_routes::create);
    sandbox_.add("DELETE", "/session/{sid}", session_routes::destroy);
    sandbox_.add("POST", "/mount", mount_routes::mount);
    sandbox_.add("POST", "/unmount", mount_routes::unmount);
    sandbox_.add("POST,DELETE", "/tunnel/{port}", tunnel_routes::tunnel);
    sandbox_.add("GET", "/tunnel", tunnel_routes::list);  // sandboxd's own
    // The network policy (network_routes.cpp; sandboxd's own).
    sandbox_.add("PUT", "/network", network_routes::put);
    sandbox_.add("GET", "/network", network_routes::get);
    // Exposed ports (port_routes.cpp; sandboxd's own: the reference keeps them off the bridge).
    sandbox_.add("GET", "/port", port_routes::list);
    sandbox_.add("POST", "/port/{port}", port_routes::expose);
    sandbox_.add("DELETE", "/port/{port}", port_routes::unexpose);
    sandbox_.add("GET", "/port/{port}", port_routes::status);
    sandbox_.add("POST", "/port/{port}/validate", port_routes::validate);
}

awaitable<void> BridgeApi::dispatch(Request& req, Responder& res) {
    // The id check and authentication: sandboxd's server made them already from the head
    // (bridgeHeadCheck), before reading the body; made again here, as one rule.
    if (auto refusal = refuseFromHead(mgr_, req))
        co_return co_await sendError(res, refusal->status, refusal->code, refusal->message);
    auto match = api_.match(req.method, req.path);
    if (!match.handler) co_return co_await sendNotFound(res);
    co_await (*match.handler)(mgr_, req, res, match.params);
}

awaitable<void> BridgeApi::sandboxRoute(Request& req, Responder& res, const RouteParams& outer) {
    const std::string path = removeDotSegments(decodeBridgePath("/" + outer["sub"]));
    auto match = sandbox_.match(req.method, path);
    if (!match.handler) co_return co_await sendNotFound(res);
    match.params.set("id", outer["id"]);
    co_await (*match.handler)(mgr_, req, res, match.params);
}

}  // namespace
}  // namespace bridge_routes

server::Handler makeBridgeRouter(SandboxManager& manager) {
    auto api = std::make_shared<bridge_routes::BridgeApi>(manager);
    return [api](Request& req, Responder& res) { return api->dispatch(req, res); };
}

}  // namespace sandbox::daemon
