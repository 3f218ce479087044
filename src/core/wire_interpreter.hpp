#pragma once
// Wire messages of the code interpreter (/api/interpreter/health, /api/contexts,
// /api/execute/code): one definition per message, used by sandbox-agent and by the SDK.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/wire.hpp"

namespace sandbox::core::wire {

/// The languages a code context runs.
enum class CodeLanguage { Python, JavaScript, TypeScript };

/// "python", "javascript" or "typescript".
std::string_view to_string(CodeLanguage l) noexcept;
/// The spellings the reference accepts, case-insensitive: python/python3, javascript/js/node,
/// typescript/ts. nullopt for anything else.
std::optional<CodeLanguage> parseCodeLanguage(std::string_view s);

/// POST /api/contexts. `language` is kept as sent: the agent maps unknown spellings to Python
/// as the reference does; the SDK checks them first.
struct CreateContextRequest {
    std::optional<std::string> language;
    std::optional<std::string> cwd;
    std::map<std::string, std::string> envVars;  ///< `env_vars`
    /// `timeout_ms`: how long the executor may take to start (not in the reference's body:
    /// it ignores the field).
    std::optional<std::int64_t> timeoutMs;
    static CreateContextRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// A context as POST /api/contexts answers it (`contextId`) and GET /api/contexts lists it
/// (`id`).
struct ContextInfo {
    std::string id;
    std::string language;
    std::string cwd;
    /// The answer of POST /api/contexts: {success, contextId, language, cwd, timestamp}.
    nlohmann::json toCreatedJson() const;
    /// One entry of GET /api/contexts: {id, language, cwd}.
    nlohmann::json toListedJson() const;
    /// Reads either shape.
    static ContextInfo fromJson(const nlohmann::json& j);
};

/// POST /api/execute/code (`context_id`, snake case as the reference).
struct RunCodeRequest {
    std::string contextId;
    std::string code;
    std::optional<std::string> language;
    std::optional<std::int64_t> timeoutMs;  ///< `timeout_ms`
    /// Lenient as the reference: a missing `context_id` or `code` is left empty for the route
    /// to answer (CONTEXT_NOT_FOUND, VALIDATION_FAILED); wrong types are VALIDATION_FAILED.
    static RunCodeRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// The format keys a `result` event may carry, in the order the SDK lists them (formats()).
inline constexpr std::string_view kResultFormats[] = {
    "text", "html", "png", "jpeg", "svg", "latex", "markdown", "javascript", "json", "chart"};

/// SSE events of /api/execute/code, rendered as single-line JSON (`data: {...}`).
namespace code_event {
/// {"type":"stdout"|"stderr","text":...}; `text` must be valid UTF-8.
std::string output(std::string_view stream, std::string_view text);
/// {"type":"result", <format keys>, "metadata":{...}} from an executor's result object (its
/// known format keys and metadata are kept; anything else is dropped).
std::string result(const nlohmann::json& fromExecutor);
/// {"type":"error","ename","evalue","traceback":[...]}
std::string error(std::string_view ename, std::string_view evalue,
                  const std::vector<std::string>& traceback);
/// {"type":"execution_complete","execution_count":n}
std::string complete(std::int64_t executionCount);
}  // namespace code_event

}  // namespace sandbox::core::wire
