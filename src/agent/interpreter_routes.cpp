// The code interpreter's routes (docs/interpreter.md): health, contexts, and runs streamed as
// SSE while they happen. The reference's bodies, codes and envelopes; where it differs (cwd and
// environment applied, events streamed, execution_count counting) docs/compatibility.md says so.
#include "agent/handlers.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/wire_interpreter.hpp"

namespace sandbox::agent::interpreter_routes {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

awaitable<void> health(Agent&, Request&, Responder& res, const RouteParams&) {
    json reply = wire::success({{"status", "healthy"}});
    co_await res.sendJson(200, reply);
}

awaitable<void> createContext(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    auto r = wire::CreateContextRequest::fromJson(core::parseJsonObject(req.body, true));
    // Unknown spellings run Python, as the reference's (the SDK refuses them first).
    auto language = r.language ? wire::parseCodeLanguage(*r.language) : std::nullopt;
    auto ctx = co_await agent.interpreter().create(
        language.value_or(wire::CodeLanguage::Python), r.cwd, r.envVars, contextSessionId(req),
        r.timeoutMs ? std::optional(std::chrono::milliseconds(*r.timeoutMs)) : std::nullopt);
    json reply = ctx->info().toCreatedJson();
    co_await res.sendJson(200, reply);
}

awaitable<void> listContexts(Agent& agent, Request&, Responder& res, const RouteParams&) {
    json list = json::array();
    for (const auto& ctx : agent.interpreter().list()) list.push_back(ctx->info().toListedJson());
    json reply = wire::success({{"contexts", std::move(list)}});
    co_await res.sendJson(200, reply);
}

awaitable<void> deleteContext(Agent& agent, Request&, Responder& res, const RouteParams& params) {
    const std::string& id = params["id"];
    if (!agent.interpreter().remove(id)) {
        json context = {{"contextId", id}};
        throw ApiError("CONTEXT_NOT_FOUND", "Context " + id + " not found", context);
    }
    json reply = wire::success({{"contextId", id}});
    co_await res.sendJson(200, reply);
}

namespace {

// Why /api/execute/code refuses a request before running it: {status, body}.
struct Refusal {
    int status = 0;
    json body;
};

Refusal refuse(int status, const char* code, std::string message, json details) {
    json body = json::object();
    body["error"] = std::move(message);
    body["code"] = code;
    body["details"] = std::move(details);
    return {status, std::move(body)};
}

// Checks a run request (in the reference's order) and finds its context.
std::optional<Refusal> checkRun(Agent& agent, const json& body, wire::RunCodeRequest& r,
                                std::shared_ptr<CodeContext>& ctx) {
    if (body.is_discarded() || !body.is_object())
        return refuse(400, "VALIDATION_FAILED", "Invalid JSON in request body", json::object());
    try {
        r = wire::RunCodeRequest::fromJson(body);
    } catch (const ApiError& e) {
        return refuse(400, "VALIDATION_FAILED", e.message(), json::object());
    }
    json details = json::object();
    if (!r.contextId.empty()) details["contextId"] = r.contextId;
    ctx = r.contextId.empty() ? nullptr : agent.interpreter().find(r.contextId);
    if (!ctx)
        return refuse(404, "CONTEXT_NOT_FOUND",
                      "Context " + (r.contextId.empty() ? std::string("undefined") : r.contextId) +
                          " not found",
                      details);
    if (!body.contains("code") || !body["code"].is_string())
        return refuse(400, "VALIDATION_FAILED", "code is required", details);
    if (r.language) {
        auto asked = wire::parseCodeLanguage(*r.language);
        if (!asked || *asked != ctx->language)
            return refuse(500, "CODE_EXECUTION_ERROR",
                          "Context " + r.contextId + " was created for " +
                              std::string(wire::to_string(ctx->language)) + ", cannot execute " +
                              *r.language + " code",
                          details);
    }
    if (ctx->executorDead())
        return refuse(500, "INTERNAL_ERROR",
                      "Context executor has terminated. Please delete and recreate the context.",
                      details);
    return std::nullopt;
}

}  // namespace

awaitable<void> executeCode(Agent& agent, Request& req, Responder& res, const RouteParams&) {
    json body = core::parseJson(req.body);
    wire::RunCodeRequest r;
    std::shared_ptr<CodeContext> ctx;
    if (auto refusal = checkRun(agent, body, r, ctx)) {
        co_await res.sendJson(refusal->status, refusal->body);
        co_return;
    }

    std::optional<std::chrono::milliseconds> timeout;
    if (r.timeoutMs && *r.timeoutMs > 0) timeout = std::chrono::milliseconds(*r.timeoutMs);
    co_await res.beginSse();
    res.enableKeepAlive(std::chrono::seconds(15));
    auto sink = [&res](std::string&& event) -> awaitable<bool> {
        if (res.clientGone()) co_return false;
        if (!event.empty()) res.queueEvent(event);
        // Held events go out when the run waits, or once enough is held (a large output).
        if (event.empty() ? res.queued() > 0 : res.queued() >= 64 * 1024)
            co_return co_await res.flush();
        co_return true;
    };
    co_await agent.interpreter().run(ctx, std::move(r.code), timeout, sink);
    co_await res.endSse();
}

}  // namespace sandbox::agent::interpreter_routes
