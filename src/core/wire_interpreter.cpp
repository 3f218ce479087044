#include "core/wire_interpreter.hpp"

#include <cctype>

#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/wire_json.hpp"

namespace sandbox::core::wire {
using nlohmann::json;
using namespace json_io;

std::string_view to_string(CodeLanguage l) noexcept {
    switch (l) {
        case CodeLanguage::Python:
            return "python";
        case CodeLanguage::JavaScript:
            return "javascript";
        case CodeLanguage::TypeScript:
            return "typescript";
    }
    return "python";
}

std::optional<CodeLanguage> parseCodeLanguage(std::string_view s) {
    std::string lower(s);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "python" || lower == "python3") return CodeLanguage::Python;
    if (lower == "javascript" || lower == "js" || lower == "node") return CodeLanguage::JavaScript;
    if (lower == "typescript" || lower == "ts") return CodeLanguage::TypeScript;
    return std::nullopt;
}

CreateContextRequest CreateContextRequest::fromJson(const json& j) {
    Fields f(j);
    CreateContextRequest r;
    r.language = f.optString("language");
    r.cwd = f.optString("cwd");
    for (auto& [k, v] : f.optStringMap("env_vars"))
        if (v) r.envVars.emplace(k, *v);
    r.timeoutMs = f.optInt("timeout_ms", 1);
    return r;
}

json CreateContextRequest::toJson() const {
    json j = json::object();
    putOpt(j, "language", language);
    putOpt(j, "cwd", cwd);
    if (!envVars.empty()) j["env_vars"] = envVars;
    if (timeoutMs) j["timeout_ms"] = *timeoutMs;
    return j;
}

json ContextInfo::toCreatedJson() const {
    return success({{"contextId", id}, {"language", language}, {"cwd", cwd}});
}

json ContextInfo::toListedJson() const {
    return {{"id", id}, {"language", language}, {"cwd", cwd}};
}

ContextInfo ContextInfo::fromJson(const json& j) {
    ContextInfo c;
    c.id = str(j, "id");
    if (c.id.empty()) c.id = str(j, "contextId");
    c.language = str(j, "language");
    c.cwd = str(j, "cwd");
    return c;
}

RunCodeRequest RunCodeRequest::fromJson(const json& j) {
    Fields f(j);
    RunCodeRequest r;
    r.contextId = f.optString("context_id").value_or("");
    r.code = f.optString("code").value_or("");
    r.language = f.optString("language");
    r.timeoutMs = f.optInt("timeout_ms", 0);
    return r;
}

json RunCodeRequest::toJson() const {
    json j = {{"context_id", contextId}, {"code", code}};
    putOpt(j, "language", language);
    if (timeoutMs) j["timeout_ms"] = *timeoutMs;
    return j;
}

namespace code_event {
// Events keep the reference's key order ("type" first): ordered_json.
using ojson = nlohmann::ordered_json;

std::string output(std::string_view stream, std::string_view text) {
    ojson j;
    j["type"] = stream;
    j["text"] = text;
    return j.dump();
}

std::string result(const json& fromExecutor) {
    ojson r;
    r["type"] = "result";
    for (std::string_view key : kResultFormats) {
        auto it = fromExecutor.find(key);
        if (it == fromExecutor.end() || it->is_null()) continue;
        // Every format but json (any value) and chart (an object) is text.
        if (key == "json" || (key == "chart" && it->is_object()) || it->is_string())
            r[std::string(key)] = *it;
    }
    auto md = fromExecutor.find("metadata");
    r["metadata"] = md != fromExecutor.end() && md->is_object() ? *md : json::object();
    return r.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string error(std::string_view ename, std::string_view evalue,
                  const std::vector<std::string>& traceback) {
    ojson j;
    j["type"] = "error";
    j["ename"] = ename;
    j["evalue"] = evalue;
    j["traceback"] = traceback;
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string complete(std::int64_t executionCount) {
    ojson j;
    j["type"] = "execution_complete";
    j["execution_count"] = executionCount;
    return j.dump();
}

}  // namespace code_event
}  // namespace sandbox::core::wire
