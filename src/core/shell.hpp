#pragma once
// Shell quoting shared by the agent (commands it builds for a session shell) and the SDK
// (commands sent through a bridge's exec route).
#include <span>
#include <string>
#include <string_view>

namespace sandbox::core {

/// POSIX single-quote quoting: 'value' with every ' written as '\''. Always quotes.
std::string shellQuote(std::string_view value);

/// True if `name` is a valid environment variable name: ^[A-Za-z_][A-Za-z0-9_]*$.
bool isValidEnvName(std::string_view name) noexcept;

}  // namespace sandbox::core
