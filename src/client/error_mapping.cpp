// SandboxError and the mapping from error responses (container envelope or bridge body) to
// the typed exceptions, driven by the code table (src/core/error_codes.def).
#include <nlohmann/json.hpp>

#include "client/error_mapping.hpp"
#include "core/errors.hpp"
#include "sandbox/errors.hpp"

namespace sandbox {
using nlohmann::json;

SandboxError::SandboxError(std::string code, std::string message, int httpStatus, json context,
                           std::string operation)
    : std::runtime_error(std::move(message)),
      code_(std::move(code)),
      httpStatus_(httpStatus),
      context_(context.is_object() ? std::move(context) : json::object()),
      operation_(std::move(operation)) {}

std::string SandboxError::contextString(const char* key) const {
    auto it = context_.find(key);
    return it != context_.end() && it->is_string() ? it->get<std::string>() : std::string();
}

namespace {

[[noreturn]] void throwForContainerCode(const std::string& code, const std::string& message,
                                        int status, const json& context,
                                        const std::string& operation) {
#define SANDBOX_ERROR_CODE(c, st, cls, sugg) \
    if (code == #c) throw cls(code, message, status, context, operation);
#include "core/error_codes.def"
#undef SANDBOX_ERROR_CODE
    throw SandboxError(code, message, status, context, operation);
}

// Bridge codes -> the SDK classes a caller would catch.
[[noreturn]] void throwForBridgeCode(const std::string& code, const std::string& message,
                                     int status, const std::string& operation) {
    json ctx = json::object();
    if (code == "unauthorized") throw AuthenticationError(code, message, status, ctx, operation);
    if (code == "workspace_read_not_found") {
        auto p = message.find(": ");
        if (p != std::string::npos) ctx["path"] = message.substr(p + 2);
        throw FileNotFoundError(code, message, status, ctx, operation);
    }
    if (code == "payload_too_large") throw FileTooLargeError(code, message, status, ctx, operation);
    if (code == "invalid_request" && status == 403)
        throw PermissionDeniedError(code, message, status, ctx, operation);
    if (code == "invalid_request")
        throw ValidationFailedError(code, message, status, ctx, operation);
    if (code == "capacity_exceeded")
        throw ContainerUnavailableError(code, message, status, ctx, operation);
    if (code == "pool_error") throw SandboxGoneError(code, message, status, ctx, operation);
    if (code == "mount_error" || code == "unmount_error")
        throw BucketMountError(code, message, status, ctx, operation);
    throw SandboxError(code, message, status, ctx, operation);
}

}  // namespace

namespace detail {
void throwErrorFromResponse(int httpStatus, const std::string& body, const std::string& operation) {
    json j = json::parse(body, nullptr, false);
    if (j.is_object()) {
        auto str = [&](const char* k) {
            auto it = j.find(k);
            return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
        };
        std::string code = str("code");
        if (!code.empty() && j.contains("message")) {
            json ctx = j.contains("context") ? j["context"] : json::object();
            std::string op = str("operation");
            throwForContainerCode(code, str("message"), httpStatus, ctx,
                                  op.empty() ? operation : op);
        }
        // /api/execute/code's refusals before a run: {error, code, details}, container codes.
        if (!code.empty() && j.contains("error") && j.contains("details"))
            throwForContainerCode(code, str("error"), httpStatus,
                                  j["details"].is_object() ? j["details"] : json::object(),
                                  operation);
        if (!code.empty() && j.contains("error"))
            throwForBridgeCode(code, str("error"), httpStatus, operation);
    }
    std::string snippet = body.substr(0, 200);
    throw SandboxError("INTERNAL_ERROR",
                       "HTTP error! status: " + std::to_string(httpStatus) +
                           (snippet.empty() ? "" : ": " + snippet),
                       httpStatus, json{{"statusText", snippet}}, operation);
}
}  // namespace detail

}  // namespace sandbox

#include "core/base64.hpp"
#include "sandbox/base64.hpp"

namespace sandbox {

std::string encodeBase64(std::string_view bytes) {
    return core::base64Encode(bytes);
}

std::optional<std::string> decodeBase64(std::string_view text) {
    return core::base64Decode(text);
}

}  // namespace sandbox

namespace sandbox::detail {

void rethrowUnexpected(const nlohmann::json::exception& e, const char* call) {
    throw SandboxError(
        "INVALID_RESPONSE",
        std::string(call) + ": the sandbox sent data of an unexpected shape (" + e.what() + ")", 0,
        nlohmann::json{{"call", call}});
}

std::string jsonBody(const nlohmann::json& body, const std::string& operation) {
    try {
        return body.dump();
    } catch (const nlohmann::json::exception&) {
        throw ValidationFailedError(
            "VALIDATION_FAILED",
            "The request holds text that is not valid UTF-8 (a command, path, name or variable); "
            "file contents may be any bytes, text fields must be UTF-8",
            400,
            nlohmann::json{
                {"validationErrors", nlohmann::json::array({{{"field", "text"},
                                                             {"message", "not valid UTF-8"},
                                                             {"code", "INVALID_UTF8"}}})}},
            operation);
    }
}

}  // namespace sandbox::detail
