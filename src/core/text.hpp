#pragma once
// Text rules of the container API that both sides must agree on.
#include <string>
#include <string_view>

namespace sandbox::core {

/// `s` without the leading and trailing characters found in `space`.
std::string trim(std::string_view s, std::string_view space = " \t\r\n");

/// Session-mode foreground output normalisation: the captured bytes are
/// split into lines (a final unterminated line counts as a line), NUL bytes dropped, invalid
/// UTF-8 replaced by U+FFFD, and the lines joined with "\n" — so the single trailing newline
/// disappears ("hi\n" -> "hi"), while "a\n\n" keeps one ("a\n").
std::string normalizeSessionOutput(std::string_view raw);

/// POSIX path resolution of `path` against `base` (an absolute directory): relative paths are
/// joined, "." and ".." segments and duplicate slashes collapsed, a trailing slash removed.
/// An absolute `path` ignores `base`. The result is always absolute.
std::string resolvePath(std::string_view base, std::string_view path);

/// Whether the absolute, resolved `path` is `root` itself or below it (a whole-segment prefix:
/// "/workspace2" is not under "/workspace").
bool pathIsUnder(std::string_view path, std::string_view root);

/// Validation of a container-API path: non-empty, no NUL, at most 4096 characters. Returns
/// the list of reasons joined by ", " (empty when the path is valid).
std::string pathProblems(std::string_view path);

/// Percent-encodes `s` for a URL query value: unreserved characters and '/' stay, every other
/// byte becomes %XX.
std::string queryEscape(std::string_view s);

/// The value of a hexadecimal digit (either case), or -1: the percent-decoders' one rule.
constexpr int hexDigitValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

}  // namespace sandbox::core
