// Sessions of the sandbox's agent (docs/sandboxd.md): POST /v1/sandbox/{id}/session and
// DELETE /v1/sandbox/{id}/session/{sid}, passed to the agent's /api/session/create and
// /api/session/delete.
#include <nlohmann/json.hpp>

#include "core/json_util.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"
#include "core/wire_bridge.hpp"
#include "daemon/handlers.hpp"

namespace sandbox::daemon::session_routes {
using nlohmann::json;
namespace wire = core::wire;

namespace {

// The route's session id, decoded once more as the reference does (decodeURIComponent of the
// already decoded path segment), where '+' stays a '+'.
std::string routeSessionId(const std::string& seg) {
    std::string sid = wire::formDecode(seg);
    if (seg.find('+') != std::string::npos) {  // '+' is not a space in a path
        sid.clear();
        for (size_t i = 0, j; i <= seg.size(); i = j + 1) {
            j = seg.find('+', i);
            if (j == std::string::npos) j = seg.size();
            if (i) sid += '+';
            sid += wire::formDecode(seg.substr(i, j - i));
        }
    }
    return sid;
}

}  // namespace

awaitable<void> create(SandboxManager& mgr, Request& req, Responder& res,
                       const RouteParams& params) {
    const std::string& id = params["id"];
    // Nesting bounded (core::parseJson): the body is serialised again (recursively) below.
    json body = core::parseJson(req.body);
    if (body.is_null()) co_return co_await sendInternalError(res);        // as the reference
    if (body.is_discarded() || !body.is_object()) body = json::object();  // "any failure: {}"
    if (!body.contains("id")) body["id"] = "session-" + std::to_string(core::epochMillisNow());
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    std::string reply;
    std::string payload = body.dump();
    int status = co_await agentCall(mgr, sb, "/api/session/create", payload, reply);
    if (status != 200) {
        const std::string message = "session create failed: " + agentMessage(status, reply);
        co_return co_await sendError(res, 502, "session_error", message);
    }
    json r = json::parse(reply, nullptr, false);
    std::string sid = body["id"].is_string() ? body["id"].get<std::string>() : "";
    if (r.is_object() && r.contains("data") && r["data"].is_object() && r["data"].contains("id") &&
        r["data"]["id"].is_string())
        sid = r["data"]["id"];
    std::string out = "{\"id\":";
    core::appendJsonString(out, sid);
    out += "}";
    co_await res.send(200, "application/json", std::move(out));
}

awaitable<void> destroy(SandboxManager& mgr, Request&, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    const std::string sid = routeSessionId(params["sid"]);
    std::shared_ptr<Sandbox> sb = co_await ensureOrReply(mgr, id, res);
    if (!sb) co_return;
    json body = {{"sessionId", sid}};
    std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string reply;
    int status = co_await agentCall(mgr, sb, "/api/session/delete", payload, reply);
    if (status != 200) {
        const std::string message = "session delete failed: " + agentMessage(status, reply);
        co_return co_await sendError(res, 502, "session_error", message);
    }
    json r = json::parse(reply, nullptr, false);
    std::string ts = r.is_object() && r.contains("timestamp") && r["timestamp"].is_string()
                         ? r["timestamp"].get<std::string>()
                         : core::isoTimestampNow();
    co_await res.send(200, "application/json", wire::sessionDeletedJson(sid, ts));
}

}  // namespace sandbox::daemon::session_routes
