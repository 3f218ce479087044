#include "core/errors.hpp"

#include <array>

#include "core/time.hpp"

namespace sandbox::core {
namespace {

struct CodeRow {
    std::string_view code;
    int status;
    std::string_view suggestion;
};

constexpr std::array kCodes = {
#define SANDBOX_ERROR_CODE(code, status, cls, suggestion) CodeRow{#code, status, suggestion},
#include "core/error_codes.def"
#undef SANDBOX_ERROR_CODE
};

const CodeRow* findCode(std::string_view code) noexcept {
    for (const auto& row : kCodes)
        if (row.code == code) return &row;
    return nullptr;
}

std::string contextValue(const nlohmann::json& context, std::string_view key) {
    if (!context.is_object()) return "undefined";
    auto it = context.find(std::string(key));
    if (it == context.end() || it->is_null()) return "undefined";
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

}  // namespace

int httpStatusForCode(std::string_view code) noexcept {
    const CodeRow* row = findCode(code);
    return row ? row->status : 500;
}

bool isRegistryCode(std::string_view code) noexcept {
    return findCode(code) != nullptr;
}

std::string suggestionFor(std::string_view code, const nlohmann::json& context) {
    const CodeRow* row = findCode(code);
    if (!row || row->suggestion.empty()) return {};
    std::string out;
    std::string_view tpl = row->suggestion;
    while (!tpl.empty()) {
        auto open = tpl.find('{');
        auto close = open == std::string_view::npos ? open : tpl.find('}', open);
        if (close == std::string_view::npos) {
            out.append(tpl);
            break;
        }
        out.append(tpl.substr(0, open));
        out.append(contextValue(context, tpl.substr(open + 1, close - open - 1)));
        tpl.remove_prefix(close + 1);
    }
    return out;
}

ApiError::ApiError(std::string code, std::string message, nlohmann::json context,
                   std::optional<std::string> operation)
    : std::runtime_error(message),
      code_(std::move(code)),
      message_(std::move(message)),
      context_(context.is_object() ? std::move(context) : nlohmann::json::object()),
      operation_(std::move(operation)),
      status_(httpStatusForCode(code_)) {
    if (!operation_) {
        auto it = context_.find("operation");
        if (it != context_.end() && it->is_string()) operation_ = it->get<std::string>();
    }
}

nlohmann::json ApiError::envelope() const {
    nlohmann::json body = {{"code", code_}, {"message", message_}, {"context", context_}};
    if (operation_) body["operation"] = *operation_;
    body["httpStatus"] = status_;
    body["timestamp"] = isoTimestampNow();
    if (auto s = suggestionFor(code_, context_); !s.empty()) body["suggestion"] = std::move(s);
    return body;
}

ApiError validationError(std::string message, std::string_view field, std::string_view fieldCode,
                         std::string_view fieldMessage) {
    nlohmann::json ctx = {{"validationErrors", nlohmann::json::array({{{"field", field},
                                                                       {"message", fieldMessage},
                                                                       {"code", fieldCode}}})}};
    return ApiError("VALIDATION_FAILED", std::move(message), std::move(ctx));
}

}  // namespace sandbox::core
