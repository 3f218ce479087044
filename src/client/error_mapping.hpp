#pragma once
// Error responses to the SDK's typed exceptions, driven by the code table
// (src/core/error_codes.def).
#include <nlohmann/json.hpp>
#include <string>

namespace sandbox::detail {

/// The JSON text of a request body. Text the caller gave that is not UTF-8 (a command, a path,
/// a variable) cannot travel in JSON: that is a ValidationFailedError naming the operation,
/// never the JSON library's own exception.
std::string jsonBody(const nlohmann::json& body, const std::string& operation);

/// A JSON library exception inside a public call: data from the server of a shape the SDK did
/// not expect (or text that cannot be JSON). Rethrown as SandboxError INVALID_RESPONSE naming
/// the call, so that no exception but the SDK's own leaves a public call.
[[noreturn]] void rethrowUnexpected(const nlohmann::json::exception& e, const char* call);

/// Throws the typed error for an error response: the container envelope
/// ({code, message, context, httpStatus, operation}) or the bridge body ({error, code});
/// anything else is a SandboxError "INTERNAL_ERROR" quoting the start of the body.
[[noreturn]] void throwErrorFromResponse(int httpStatus, const std::string& body,
                                         const std::string& operation = {});

}  // namespace sandbox::detail
