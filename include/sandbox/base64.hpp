#pragma once
/// @file
/// Base64 helpers for binary file content: writeFile(path, encodeBase64(bytes),
/// {.encoding = Encoding::Base64}); readFile(...).bytes() decodes for you.
#include <optional>
#include <string>
#include <string_view>

namespace sandbox {

/// Standard alphabet, padded.
std::string encodeBase64(std::string_view bytes);
/// Strict decoding; nullopt when `text` is not valid base64.
std::optional<std::string> decodeBase64(std::string_view text);

}  // namespace sandbox
