#pragma once
// Error responses to the SDK's typed exceptions, driven by the code table
// (src/core/error_codes.def).
#include <string>

namespace sandbox::detail {

/// Throws the typed error for an error response: the container envelope
/// ({code, message, context, httpStatus, operation}) or the bridge body ({error, code});
/// anything else is a SandboxError "INTERNAL_ERROR" quoting the start of the body.
[[noreturn]] void throwErrorFromResponse(int httpStatus, const std::string& body,
                                         const std::string& operation = {});

}  // namespace sandbox::detail
