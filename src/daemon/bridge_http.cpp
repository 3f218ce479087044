#include "daemon/bridge_http.hpp"

#include <cctype>
#include <nlohmann/json.hpp>

#include "core/text.hpp"
#include "core/utf8.hpp"

namespace sandbox::daemon {
using nlohmann::json;
using server::Request;
using server::Responder;

std::string errorBody(std::string_view message, std::string_view code) {
    std::string s = "{\"error\":";
    core::appendJsonString(s, message);
    s += ",\"code\":";
    core::appendJsonString(s, code);
    s += "}";
    return s;
}

awaitable<void> sendError(Responder& res, int status, std::string_view code,
                          std::string_view message) {
    co_await res.send(status, "application/json", errorBody(message, code));
}

awaitable<void> sendNotFound(Responder& res) {
    co_await res.send(404, "text/plain; charset=UTF-8", "404 Not Found");
}

awaitable<void> sendInternalError(Responder& res) {
    co_await res.send(500, "text/plain; charset=UTF-8", "Internal Server Error");
}

awaitable<void> sendOk(Responder& res) {
    co_await res.send(200, "application/json", "{\"ok\":true}");
}

bool validSessionId(std::string_view s) {
    if (s.empty() || s.size() > 128 || s.find("..") != std::string_view::npos) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
            return false;
    return true;
}

std::optional<std::string> sessionHeader(const Request& req, bool& invalid) {
    invalid = false;
    int count = 0;
    std::string value;
    for (const auto& [k, v] : req.headers)
        if (k == "session-id") {
            value = count++ ? value + ", " + v : v;
        }
    value = core::trim(value, " \t");
    if (value.empty()) return std::nullopt;
    if (!validSessionId(value)) invalid = true;
    return value;
}

awaitable<std::shared_ptr<Sandbox>> ensureOrReply(SandboxManager& mgr, const std::string& id,
                                                  Responder& res) {
    std::shared_ptr<Sandbox> sb;
    std::string startError;
    bool capacity = false;
    try {
        sb = co_await mgr.ensure(id);
    } catch (const CapacityError& e) {
        capacity = true;  // 503 capacity_exceeded with the raw message, as the reference
        startError = e.what();
    } catch (const std::exception& e) {
        startError = e.what();
    }
    if (!sb && capacity) {
        co_await sendError(res, 503, "capacity_exceeded", startError);
    } else if (!sb) {
        const std::string message = "pool error: " + startError;
        co_await sendError(res, 502, "pool_error", message);
    }
    co_return sb;
}

server::HttpPeer agentPeer(const Sandbox& sb) {
    return server::HttpPeer::unixSocket(sb.connectPath(), "the sandbox agent");
}

awaitable<std::shared_ptr<server::HttpCall>> connectAgent(SandboxManager& mgr,
                                                          std::shared_ptr<Sandbox>& sb) {
    auto ex = co_await net::this_coro::executor;
    auto call = std::make_shared<server::HttpCall>(ex, agentPeer(*sb));
    if (co_await call->connect() || !call->refused()) co_return call;
    mgr.markBroken(sb->id, sb->generation);
    std::shared_ptr<Sandbox> fresh;
    try {
        fresh = co_await mgr.ensure(sb->id);
    } catch (const std::exception&) {
        co_return call;  // the first failure stands
    }
    sb = fresh;
    call = std::make_shared<server::HttpCall>(ex, agentPeer(*sb));
    co_await call->connect();
    co_return call;
}

awaitable<int> agentCall(SandboxManager& mgr, const std::shared_ptr<Sandbox>& sandbox,
                         const std::string& path, const std::string& body, std::string& reply) {
    std::shared_ptr<Sandbox> sb = sandbox;
    auto up = co_await connectAgent(mgr, sb);
    const unsigned generation = sb->generation;
    server::Headers headers{{"content-type", "application/json"}};
    bool ok = co_await up->start("POST", path, body, headers);
    if (ok) ok = co_await up->readAll(reply);
    if (!ok) {
        reply = up->error().empty() ? "the sandbox agent did not answer" : up->error();
        mgr.markBroken(sb->id, generation);
        co_return -1;
    }
    co_return up->status();
}

std::string agentMessage(int status, const std::string& reply) {
    if (status < 0) return reply;
    json j = json::parse(reply, nullptr, false);
    if (j.is_object()) {
        if (j.contains("message") && j["message"].is_string()) return j["message"];
        if (j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
            j["error"]["message"].is_string())
            return j["error"]["message"];
        if (j.contains("error") && j["error"].is_string()) return j["error"];
    }
    return "HTTP " + std::to_string(status);
}

awaitable<void> touchSession(SandboxManager& mgr, std::shared_ptr<Sandbox> sb,
                             const std::string& sid) {
    json body = {{"id", sid}};
    std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string reply;
    co_await agentCall(mgr, sb, "/api/session/create", payload, reply);  // 409: it exists
}

}  // namespace sandbox::daemon
