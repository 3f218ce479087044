#pragma once
// The container API's error model: the code registry and the standard
// error envelope. Shared by sandbox-agent (producer) and the SDK (consumer).
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace sandbox::core {

/// HTTP status for a registry code; 500 for codes outside the registry (as the reference does).
int httpStatusForCode(std::string_view code) noexcept;

/// True when `code` is one of the registry codes of error_codes.def.
bool isRegistryCode(std::string_view code) noexcept;

/// The suggestion text for a code with `{field}` placeholders filled from `context`
/// (empty when the code has no suggestion).
std::string suggestionFor(std::string_view code, const nlohmann::json& context);

/// A failure on the container API: everything needed to render the standard envelope.
/// Thrown by services, rendered by the HTTP layer.
class ApiError : public std::runtime_error {
  public:
    ApiError(std::string code, std::string message,
             nlohmann::json context = nlohmann::json::object(),
             std::optional<std::string> operation = std::nullopt);

    const std::string& code() const noexcept { return code_; }
    /// The full message (what() stops at an embedded NUL, e.g. one from a rejected path).
    const std::string& message() const noexcept { return message_; }
    const nlohmann::json& context() const noexcept { return context_; }
    const std::optional<std::string>& operation() const noexcept { return operation_; }
    /// The HTTP status of this error (from the registry; 500 for other codes).
    int httpStatus() const noexcept { return status_; }
    /// Overrides the status (used only for the router's 404 UNKNOWN_ERROR, as the reference).
    ApiError& withStatus(int status) {
        status_ = status;
        return *this;
    }

    /// The standard envelope {code,message,context,operation?,httpStatus,timestamp,suggestion?}.
    nlohmann::json envelope() const;

  private:
    std::string code_;
    std::string message_;
    nlohmann::json context_;
    std::optional<std::string> operation_;
    int status_;
};

/// A 400 VALIDATION_FAILED with the {validationErrors:[{field,message,code}]} context.
ApiError validationError(std::string message, std::string_view field, std::string_view fieldCode,
                         std::string_view fieldMessage);

}  // namespace sandbox::core
