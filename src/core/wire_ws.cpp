#include "core/wire_ws.hpp"

#include "core/json_util.hpp"

namespace sandbox::core::wire {
using nlohmann::json;

namespace {
std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}
}  // namespace

std::string ptyReady() {
    return R"({"type":"ready"})";
}

std::string ptyExit(int code, const std::optional<std::string>& signal) {
    json j = {{"type", "exit"}, {"code", code}};
    if (signal) j["signal"] = *signal;
    return dump(j);
}

std::string ptyError(std::string_view message) {
    return dump(json{{"type", "error"}, {"message", message}});
}

std::string ptyResize(int cols, int rows) {
    return dump(json{{"type", "resize"}, {"cols", cols}, {"rows", rows}});
}

std::optional<PtyMessage> parsePtyMessage(std::string_view text) {
    json j = parseJson(text);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    auto t = j.find("type");
    if (t == j.end() || !t->is_string()) return std::nullopt;
    PtyMessage m;
    m.type = t->get<std::string>();
    if (auto it = j.find("cols"); it != j.end() && it->is_number()) m.cols = it->get<double>();
    if (auto it = j.find("rows"); it != j.end() && it->is_number()) m.rows = it->get<double>();
    if (auto it = j.find("code"); it != j.end() && it->is_number_integer()) m.code = it->get<int>();
    if (auto it = j.find("signal"); it != j.end() && it->is_string())
        m.signal = it->get<std::string>();
    if (auto it = j.find("message"); it != j.end() && it->is_string())
        m.message = it->get<std::string>();
    return m;
}

std::optional<WsRequest> parseWsRequest(std::string_view text, WsParseError& error) {
    error = WsParseError::None;
    // Nesting is bounded (parseJson): the body is copied and serialised recursively, and a
    // frame of a few hundred KiB of brackets would otherwise exhaust the stack.
    json j = parseJson(text);
    if (j.is_discarded()) {
        error = WsParseError::NotJson;
        return std::nullopt;
    }
    if (!j.is_object() || !j.contains("type") || !j["type"].is_string() ||
        (j["type"] != "request" && j["type"] != "cancel")) {
        error = WsParseError::InvalidRequest;
        return std::nullopt;
    }
    WsRequest r;
    r.type = j["type"].get<std::string>();
    auto str = [&](const char* k, std::string& out) {
        if (auto it = j.find(k); it != j.end() && it->is_string()) out = it->get<std::string>();
    };
    str("id", r.id);
    str("method", r.method);
    str("path", r.path);
    if (auto it = j.find("body"); it != j.end()) r.body = *it;
    if (auto it = j.find("headers"); it != j.end() && it->is_object())
        for (const auto& [k, v] : it->items())
            if (v.is_string()) r.headers.emplace_back(k, v.get<std::string>());
    return r;
}

std::string wsRequestJson(const WsRequest& r) {
    json j = {{"type", r.type}, {"id", r.id}};
    if (r.type == "request") {
        j["method"] = r.method;
        j["path"] = r.path;
        if (r.body) j["body"] = *r.body;
        if (!r.headers.empty()) {
            json h = json::object();
            for (const auto& [k, v] : r.headers) h[k] = v;
            j["headers"] = h;
        }
    }
    return dump(j);
}

std::string wsResponse(std::string_view id, int status, const std::optional<json>& body) {
    json j = {{"type", "response"}, {"id", id}, {"status", status}};
    if (body) j["body"] = *body;
    j["done"] = true;
    return dump(j);
}

std::string wsStream(std::string_view id, const std::optional<std::string>& event,
                     std::string_view data) {
    json j = {{"type", "stream"}, {"id", id}};
    if (event) j["event"] = *event;
    j["data"] = data;
    return dump(j);
}

std::string wsError(const std::optional<std::string>& id, std::string_view code,
                    std::string_view message, int status) {
    json j = {{"type", "error"}};
    if (id) j["id"] = *id;
    j["code"] = code;
    j["message"] = message;
    j["status"] = status;
    return dump(j);
}

}  // namespace sandbox::core::wire
