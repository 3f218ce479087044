#pragma once
// Shell quoting shared by the agent (commands it builds for a session shell) and the SDK
// (commands sent through a bridge's exec route).
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::core {

/// POSIX single-quote quoting: 'value' with every ' written as '\''. Always quotes.
std::string shellQuote(std::string_view value);

/// The bridge API's argv quoting: an argument made only of A-Z a-z 0-9 @ % + = : , . / - is
/// kept as is; anything else (and "") becomes bash ANSI-C quoting $'...' with \\ ' LF CR TAB
/// escaped. Arguments are then joined with single spaces by the caller.
std::string bridgeQuote(std::string_view arg);
/// argv -> one bash command line with bridgeQuote.
std::string bridgeCommand(const std::vector<std::string>& argv);

/// True if `name` is a valid environment variable name: ^[A-Za-z_][A-Za-z0-9_]*$.
bool isValidEnvName(std::string_view name) noexcept;

}  // namespace sandbox::core
