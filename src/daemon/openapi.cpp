// GET /v1/openapi.json and /v1/openapi (.html): the bridge's reference OpenAPI document,
// embedded at build time (src/daemon/openapi/bridge-openapi.json), extended with what sandboxd
// adds (each addition marked with an `x-sandboxd` extension), and a self-contained HTML
// rendering of it made here, server-side (no script, no external fetch).
#include "daemon/openapi.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

extern const char kBridgeOpenApiJson[];
extern const unsigned long kBridgeOpenApiJson_size;

namespace sandbox::daemon {
namespace {
using ojson = nlohmann::ordered_json;

ojson buildDocument() {
    ojson doc = ojson::parse(std::string_view(kBridgeOpenApiJson, kBridgeOpenApiJson_size));
    const ojson idParam = {{"name", "id"},
                           {"in", "path"},
                           {"required", true},
                           {"schema", {{"type", "string"}, {"pattern", "^[a-z2-7]{1,128}$"}}},
                           {"description", "Sandbox instance name."}};
    const ojson routeParam = {
        {"name", "route"},
        {"in", "path"},
        {"required", true},
        {"schema", {{"type", "string"}}},
        {"description",
         "A container-API route without its leading slash, e.g. `api/execute`, "
         "`api/read/stream`, `api/session/create` (see docs/agent.md)."}};
    auto passthroughOp = [&](const char* method) {
        return ojson{
            {"operationId", std::string("agentPassthrough") + method},
            {"summary", "Container API of the sandbox (sandboxd extension)"},
            {"description",
             "Forwards the request, body as received, to the sandbox's own container-API server "
             "and streams its answer back (JSON, SSE, raw bytes; WebSocket upgrades where the "
             "route is one). The same bearer authentication as the other sandbox routes; the "
             "`Authorization` header is not forwarded. This is how the SDK reaches its whole "
             "API (processes, code contexts, sessions, ...) through sandboxd."},
            {"parameters", ojson::array({idParam, routeParam})},
            {"responses",
             {{"200", {{"description", "The container API's answer, passed through as is."}}},
              {"401", {{"$ref", "#/components/responses/Unauthorized"}}},
              {"502",
               {{"description", "The sandbox's agent could not be reached."},
                {"content",
                 {{"application/json",
                   {{"schema", {{"$ref", "#/components/schemas/ErrorResponse"}}}}}}}}}}},
            {"x-sandboxd", {{"extension", true}}}};
    };
    doc["paths"]["/v1/sandbox/{id}/agent/{route}"] = {{"get", passthroughOp("Get")},
                                                      {"post", passthroughOp("Post")},
                                                      {"put", passthroughOp("Put")},
                                                      {"delete", passthroughOp("Delete")},
                                                      {"x-sandboxd", {{"extension", true}}}};
    const ojson htmlOp = {
        {"summary", "This document as a readable HTML page"},
        {"description",
         "Served by the reference too, but missing from its document. Accepts the token as "
         "`?token=` like /v1/openapi.json."},
        {"responses", {{"200", {{"description", "A self-contained HTML page."}}}}},
        {"x-sandboxd", {{"addedToDocument", true}}}};
    // Exposed ports and the tunnel list (docs/ports.md): the reference keeps them in its
    // Durable Object; sandboxd serves them.
    const ojson portParam = {
        {"name", "port"},
        {"in", "path"},
        {"required", true},
        {"schema", {{"type", "integer"}, {"minimum", 1024}, {"maximum", 65535}}},
        {"description", "A port inside the sandbox; 3000 is reserved."}};
    const ojson errorContent = {
        {"application/json", {{"schema", {{"$ref", "#/components/schemas/ErrorResponse"}}}}}};
    auto portOp = [&](const char* id, const char* summary, const char* description, bool withPort,
                      const char* ok) {
        ojson params = ojson::array({idParam});
        if (withPort) params.push_back(portParam);
        return ojson{
            {"operationId", id},
            {"summary", summary},
            {"description", description},
            {"parameters", params},
            {"responses",
             {{"200", {{"description", ok}}},
              {"400", {{"description", "A bad port, token or body."}, {"content", errorContent}}},
              {"401", {{"$ref", "#/components/responses/Unauthorized"}}}}},
            {"x-sandboxd", {{"extension", true}}}};
    };
    doc["paths"]["/v1/sandbox/{id}/port/{port}"] = {
        {"post",
         portOp("exposePort", "Expose a port at a preview URL",
                "Body `{name?, token?, hostname?}` (token: 1-16 of [a-z0-9_]). Returns `{url, "
                "port, name?}`; the URL `{scheme}://{port}-{id}-{token}.{host}/` forwards to the "
                "port for this launch of the sandbox (410 STALE_PREVIEW_URL after a restart until "
                "exposed again; 404 INVALID_TOKEN once unexposed).",
                true, "The preview URL.")},
        {"delete", portOp("unexposePort", "Revoke a port's preview URL",
                          "Idempotent: 204 whether or not the port was exposed. Open "
                          "connections through the URL are closed.",
                          true, "Unused: the answer is 204.")},
        {"get", portOp("portStatus", "Whether a port is exposed", "Returns `{port, exposed}`.",
                       true, "The port's state.")},
        {"x-sandboxd", {{"extension", true}}}};
    doc["paths"]["/v1/sandbox/{id}/port/{port}/validate"] = {
        {"post", portOp("validatePortToken", "Check a port's token",
                        "Body `{token}`; returns `{valid}` (compared in constant time).", true,
                        "Whether the token is the port's.")},
        {"x-sandboxd", {{"extension", true}}}};
    doc["paths"]["/v1/sandbox/{id}/port"] = {
        {"get", portOp("getExposedPorts", "The exposed ports active now",
                       "Returns `{ports: [{url, port, name?, status: \"active\"}]}`; "
                       "`?hostname=` writes the URLs for that host.",
                       false, "The active exposures.")},
        {"x-sandboxd", {{"extension", true}}}};
    doc["paths"]["/v1/sandbox/{id}/tunnel"] = {
        {"get", portOp("listTunnels", "The sandbox's tunnels", "Returns `{tunnels: [Tunnel]}`.",
                       false, "The tunnels.")},
        {"x-sandboxd", {{"extension", true}}}};
    doc["paths"]["/v1/sandbox/{id}/network"] = {
        {"put", portOp("setNetwork", "Set the sandbox's network policy",
                       "Body `{mode: \"none\" | \"outbound\", allow: [rule]}` (rules: "
                       "`A.B.C.D[/N][:PORT[-PORT]]`, `NAME[:PORT[-PORT]]`, "
                       "`host-loopback:PORT[-PORT]`, `dns`; see docs/network.md). Names are "
                       "resolved by sandboxd and pinned (`resolved` in the answer). A running "
                       "sandbox under other rules is restarted. 501 OUTBOUND_UNAVAILABLE where "
                       "sandboxd cannot offer outbound access; 422 NETWORK_HOST_UNRESOLVED or "
                       "NETWORK_HOST_NOT_PUBLIC for a name that cannot be used.",
                       false, "The policy now in force.")},
        {"get", portOp("getNetwork", "The sandbox's network policy", "`{mode, allow, resolved?}`.",
                       false, "The policy in force.")},
        {"x-sandboxd", {{"extension", true}}}};
    doc["paths"]["/v1/openapi"] = {{"get", htmlOp}};
    doc["paths"]["/v1/openapi.html"] = {{"get", htmlOp}};
    // The reference's error-code list misses the 413 of PUT /file (payload_too_large).
    if (auto& codes = doc["components"]["schemas"]["ErrorResponse"]["properties"]["code"];
        codes.is_object() && codes.contains("enum") && codes["enum"].is_array()) {
        bool has = false;
        for (const auto& c : codes["enum"]) has = has || c == "payload_too_large";
        if (!has) {
            codes["enum"].push_back("payload_too_large");
            codes["x-sandboxd"] = {{"added", ojson::array({"payload_too_large"})}};
        }
    }
    doc["x-sandboxd"] = {
        {"server", "sandboxd"},
        {"reference", "bridge OpenAPI document of @cloudflare/sandbox 0.12.7"},
        {"additions",
         ojson::array({"/v1/sandbox/{id}/agent/{route}: the container-API passthrough",
                       "/v1/openapi and /v1/openapi.html: served by the reference, now listed",
                       "/v1/sandbox/{id}/port...: exposed ports and preview URLs",
                       "/v1/sandbox/{id}/tunnel (GET): the tunnel list",
                       "/v1/sandbox/{id}/network: a sandbox's network policy",
                       "ErrorResponse.code: payload_too_large (413 of PUT /file)"})}};
    return doc;
}

const ojson& document() {
    static const ojson doc = buildDocument();
    return doc;
}

std::string esc(std::string_view s) {
    std::string o;
    for (char c : s) switch (c) {
            case '&':
                o += "&amp;";
                break;
            case '<':
                o += "&lt;";
                break;
            case '>':
                o += "&gt;";
                break;
            case '"':
                o += "&quot;";
                break;
            default:
                o.push_back(c);
        }
    return o;
}

// Escaped text with `code` spans rendered.
std::string prose(std::string_view s) {
    std::string e = esc(s), o;
    bool in = false;
    for (char c : e) {
        if (c == '`') {
            o += in ? "</code>" : "<code>";
            in = !in;
        } else if (c == '\n') {
            o += "<br>";
        } else {
            o.push_back(c);
        }
    }
    if (in) o += "</code>";
    return o;
}

std::string str(const ojson& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::string anchor(std::string_view s) {
    std::string o;
    for (char c : s) o.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '-');
    return o;
}

// A schema in one line: its $ref as a link, else its type.
std::string schemaSummary(const ojson& s) {
    if (!s.is_object()) return "";
    if (s.contains("$ref")) {
        std::string ref = s["$ref"].get<std::string>();
        std::string name = ref.substr(ref.rfind('/') + 1);
        return "<a href=\"#schema-" + anchor(name) + "\">" + esc(name) + "</a>";
    }
    std::string t = s.contains("type") ? s["type"].dump() : "object";
    if (!t.empty() && t.front() == '"') t = t.substr(1, t.size() - 2);
    if (t == "array" && s.contains("items")) return "array of " + schemaSummary(s["items"]);
    return esc(t);
}

std::string pre(const ojson& j) {
    return "<pre>" + esc(j.dump(2)) + "</pre>";
}

std::string buildHtml() {
    const ojson& d = document();
    std::string h;
    h += "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<title>" +
         esc(str(d["info"], "title")) +
         "</title><style>"
         "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}"
         "main{max-width:1000px;margin:0 auto;padding:24px}"
         "h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:1px solid #ddd}"
         ".op{background:#fff;border:1px solid #ddd;border-radius:8px;margin:16px 0;padding:12px "
         "16px}"
         ".m{display:inline-block;min-width:64px;text-align:center;font-weight:700;color:#fff;"
         "border-radius:4px;padding:1px 8px;margin-right:8px;font-size:13px}"
         ".get{background:#2f7fd1}.post{background:#3a9a4d}.put{background:#c17d12}"
         ".delete{background:#c0392b}.path{font-family:ui-monospace,monospace;font-weight:600}"
         ".x{background:#6f42c1;color:#fff;border-radius:4px;padding:1px 6px;font-size:12px;"
         "margin-left:8px}"
         "table{border-collapse:collapse;width:100%;margin:8px 0}td,th{border:1px solid "
         "#e3e3e3;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}"
         "th{background:#f3f3f3}code{background:#f0f0f0;padding:0 3px;border-radius:3px}"
         "pre{background:#f6f8fa;border:1px solid #e3e3e3;padding:8px;overflow:auto;"
         "font-size:13px}nav a{margin-right:12px}"
         "</style></head><body><main>\n";
    h += "<h1>" + esc(str(d["info"], "title")) + "</h1>";
    h += "<p>OpenAPI " + esc(str(d, "openapi")) + " · version " + esc(str(d["info"], "version")) +
         " · served by sandboxd</p>";
    h += "<p>" + prose(str(d["info"], "description")) + "</p>";
    h += "<p>Authentication: <code>Authorization: Bearer &lt;key&gt;</code> on every route "
         "but <code>/health</code> (when the server has a key). The machine-readable document "
         "is <a href=\"openapi.json\">/v1/openapi.json</a>. Items marked "
         "<span class=\"x\">sandboxd</span> are this server's additions.</p>";
    h += "<nav><a href=\"#paths\">Routes</a><a href=\"#schemas\">Schemas</a></nav>";
    h += "<h2 id=\"paths\">Routes</h2>\n";
    for (const auto& [path, item] : d["paths"].items()) {
        for (const auto& [method, op] : item.items()) {
            if (method.rfind("x-", 0) == 0 || !op.is_object()) continue;
            h += "<section class=\"op\" id=\"" + anchor(method + path) +
                 "\"><div><span class=\"m " + esc(method) + "\">" + esc(method) + "</span>";
            h += "<span class=\"path\">" + esc(path) + "</span>";
            if (op.contains("x-sandboxd") || item.contains("x-sandboxd"))
                h += "<span class=\"x\">sandboxd</span>";
            h += "</div>";
            if (auto s = str(op, "summary"); !s.empty()) h += "<p><b>" + prose(s) + "</b>";
            if (auto id = str(op, "operationId"); !id.empty())
                h += " <small>(<code>" + esc(id) + "</code>)</small>";
            h += "</p>";
            if (auto s = str(op, "description"); !s.empty()) h += "<p>" + prose(s) + "</p>";
            if (op.contains("parameters") && op["parameters"].is_array() &&
                !op["parameters"].empty()) {
                h += "<table><tr><th>parameter</th><th>in</th><th>required</th><th>type</th>"
                     "<th>description</th></tr>";
                for (const auto& p : op["parameters"])
                    h += "<tr><td><code>" + esc(str(p, "name")) + "</code></td><td>" +
                         esc(str(p, "in")) + "</td><td>" +
                         (p.value("required", false) ? "yes" : "no") + "</td><td>" +
                         schemaSummary(p.value("schema", ojson::object())) + "</td><td>" +
                         prose(str(p, "description")) + "</td></tr>";
                h += "</table>";
            }
            if (op.contains("requestBody") && op["requestBody"].contains("content")) {
                for (const auto& [type, media] : op["requestBody"]["content"].items()) {
                    h += "<p>Request body <code>" + esc(type) +
                         "</code>: " + schemaSummary(media.value("schema", ojson::object())) +
                         "</p>";
                    if (media.contains("schema") && !media["schema"].contains("$ref"))
                        h += pre(media["schema"]);
                }
            }
            if (op.contains("responses")) {
                h += "<table><tr><th>status</th><th>meaning</th><th>body</th></tr>";
                for (const auto& [status, resp] : op["responses"].items()) {
                    std::string desc = str(resp, "description"), body;
                    if (resp.contains("$ref")) {
                        std::string ref = resp["$ref"].get<std::string>();
                        std::string name = ref.substr(ref.rfind('/') + 1);
                        const ojson& shared = d["components"]["responses"][name];
                        desc = str(shared, "description");
                        if (shared.contains("content"))
                            for (const auto& [type, media] : shared["content"].items())
                                body += esc(type) + " " +
                                        schemaSummary(media.value("schema", ojson::object()));
                    }
                    if (resp.contains("content"))
                        for (const auto& [type, media] : resp["content"].items())
                            body += esc(type) + " " +
                                    schemaSummary(media.value("schema", ojson::object())) + " ";
                    h += "<tr><td>" + esc(status) + "</td><td>" + prose(desc) + "</td><td>" + body +
                         "</td></tr>";
                }
                h += "</table>";
            }
            h += "</section>\n";
        }
    }
    h += "<h2 id=\"schemas\">Schemas</h2>\n";
    if (d.contains("components") && d["components"].contains("schemas"))
        for (const auto& [name, schema] : d["components"]["schemas"].items()) {
            h += "<section class=\"op\" id=\"schema-" + anchor(name) + "\"><h3>" + esc(name) +
                 "</h3>";
            if (auto s = str(schema, "description"); !s.empty()) h += "<p>" + prose(s) + "</p>";
            h += pre(schema) + "</section>\n";
        }
    h += "</main></body></html>\n";
    return h;
}

}  // namespace

const std::string& openApiJson() {
    static const std::string text =
        document().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return text;
}

const std::string& openApiHtml() {
    static const std::string html = buildHtml();
    return html;
}

}  // namespace sandbox::daemon
