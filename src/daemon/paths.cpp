#include "daemon/paths.hpp"

#include <cstring>
#include <vector>

#include "core/text.hpp"
#include "core/utf8.hpp"

namespace sandbox::daemon {

std::string decodeBridgePath(std::string_view raw) {
    constexpr auto hex = core::hexDigitValue;
    std::string out;
    size_t i = 0;
    while (i < raw.size()) {
        if (raw[i] != '%') {
            out.push_back(raw[i++]);
            continue;
        }
        // A maximal run of %XX triplets, decoded together (UTF-8 sequences span triplets).
        size_t j = i;
        std::string bytes, text;
        while (j + 2 < raw.size() + 0 && raw[j] == '%' && hex(raw[j + 1]) >= 0 &&
               hex(raw[j + 2]) >= 0) {
            char b = static_cast<char>(hex(raw[j + 1]) * 16 + hex(raw[j + 2]));
            bytes.push_back(b);
            text.append(raw.substr(j, 3));
            j += 3;
        }
        if (j == i) {  // a lone '%' or bad escape: verbatim
            out.push_back(raw[i++]);
            continue;
        }
        if (!core::isValidUtf8(bytes)) {
            out += text;
        } else {
            for (size_t k = 0; k < bytes.size(); ++k) {
                char b = bytes[k];
                if (std::strchr(";/?:@&=+$,#%", b) && b != '\0')
                    out.append(text.substr(k * 3, 3));
                else
                    out.push_back(b);
            }
        }
        i = j;
    }
    return out;
}

std::string removeDotSegments(std::string_view path) {
    std::vector<std::string_view> out;
    size_t i = path.empty() || path[0] != '/' ? 0 : 1;
    for (;;) {
        size_t j = path.find('/', i);
        bool last = j == std::string_view::npos;
        std::string_view seg = path.substr(i, last ? std::string_view::npos : j - i);
        if (seg == "." || seg == "..") {
            if (seg == ".." && !out.empty()) out.pop_back();
            if (last) out.emplace_back();  // "/a/b/.." is "/a/"
        } else {
            out.push_back(seg);
        }
        if (last) break;
        i = j + 1;
    }
    std::string s;
    for (auto seg : out) s.append("/").append(seg);
    return s.empty() ? "/" : s;
}

std::string normaliseSandboxPath(std::string_view path) {
    std::vector<std::string_view> parts;
    size_t i = 0;
    while (i <= path.size()) {
        size_t j = path.find('/', i);
        if (j == std::string_view::npos) j = path.size();
        std::string_view c = path.substr(i, j - i);
        i = j + 1;
        if (c.empty() || c == ".") continue;
        if (c == "..") {
            if (!parts.empty()) parts.pop_back();
            continue;
        }
        parts.push_back(c);
    }
    std::string out;
    for (auto p : parts) out.append("/").append(p);
    return out.empty() ? "/" : out;
}

std::string mountPathRefused(const std::string& path) {
    // The mount point is made and opened one C string per component: a NUL would end the path
    // early, at a place the checks below never saw ("/proc\0x" is "/proc").
    if (path.find('\0') != std::string::npos) return "a mount path cannot contain a NUL byte";
    if (path == "/") return "a bucket cannot be mounted over the sandbox's root";
    if (path == "/workspace")
        return "a bucket cannot be mounted over /workspace itself; mount it below, say at "
               "/workspace/data";
    for (const char* dir : {"/proc", "/dev", "/sys", "/run"})
        if (path == dir || path.rfind(std::string(dir) + "/", 0) == 0)
            return std::string("a bucket cannot be mounted under ") + dir;
    return {};
}

}  // namespace sandbox::daemon
