#include "core/text.hpp"

#include <cctype>

#include <vector>

#include "core/utf8.hpp"

namespace sandbox::core {

std::string trim(std::string_view s, std::string_view space) {
    auto b = s.find_first_not_of(space);
    if (b == std::string_view::npos) return {};
    auto e = s.find_last_not_of(space);
    return std::string(s.substr(b, e - b + 1));
}

std::string normalizeSessionOutput(std::string_view raw) {
    if (raw.empty()) return {};
    std::string cleaned;
    cleaned.reserve(raw.size());
    for (char c : raw)
        if (c != '\0') cleaned.push_back(c);
    // Drop the one newline that terminates the final line; every other newline separates lines.
    if (!cleaned.empty() && cleaned.back() == '\n') cleaned.pop_back();
    return sanitizeUtf8(cleaned);
}

std::string resolvePath(std::string_view base, std::string_view path) {
    std::vector<std::string_view> parts;
    auto push = [&](std::string_view s) {
        size_t i = 0;
        while (i <= s.size()) {
            size_t j = s.find('/', i);
            if (j == std::string_view::npos) j = s.size();
            std::string_view seg = s.substr(i, j - i);
            if (seg.empty() || seg == ".") {
            } else if (seg == "..") {
                if (!parts.empty()) parts.pop_back();
            } else {
                parts.push_back(seg);
            }
            i = j + 1;
        }
    };
    if (path.empty() || path.front() != '/') push(base);
    push(path);
    std::string out;
    for (auto seg : parts) {
        out.push_back('/');
        out.append(seg);
    }
    return out.empty() ? "/" : out;
}

bool pathIsUnder(std::string_view path, std::string_view root) {
    return path == root || (path.size() > root.size() && path.compare(0, root.size(), root) == 0 &&
                            (root == "/" || path[root.size()] == '/'));
}

std::string pathProblems(std::string_view path) {
    std::string out;
    auto add = [&](std::string_view s) {
        if (!out.empty()) out.append(", ");
        out.append(s);
    };
    if (path.empty()) add("Path must be a non-empty string");
    if (path.find('\0') != std::string_view::npos) add("Path contains null bytes");
    if (path.size() > 4096) add("Path too long (max 4096 characters)");
    return out;
}

std::string queryEscape(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

}  // namespace sandbox::core
