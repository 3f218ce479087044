#include "core/shell.hpp"

namespace sandbox::core {

std::string shellQuote(std::string_view value) {
    std::string out;
    out.reserve(value.size() + 2);
    out.push_back('\'');
    for (char c : value) {
        if (c == '\'')
            out.append("'\\''");
        else
            out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

std::string bridgeQuote(std::string_view arg) {
    auto safe = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '@' || c == '%' || c == '+' || c == '=' || c == ':' || c == ',' || c == '.' ||
               c == '/' || c == '-';
    };
    bool plain = !arg.empty();
    for (char c : arg)
        if (!safe(c)) {
            plain = false;
            break;
        }
    if (plain) return std::string(arg);
    std::string out = "$'";
    for (char c : arg) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\'':
                out += "\\'";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                out.push_back(c);
        }
    }
    out.push_back('\'');
    return out;
}

std::string bridgeCommand(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) out.push_back(' ');
        out += bridgeQuote(a);
    }
    return out;
}

bool isValidEnvName(std::string_view name) noexcept {
    if (name.empty()) return false;
    auto alpha = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    };
    if (!alpha(name[0])) return false;
    for (char c : name.substr(1))
        if (!alpha(c) && !(c >= '0' && c <= '9')) return false;
    return true;
}

}  // namespace sandbox::core
