#pragma once
// Helpers shared by the fuzz targets: a failed invariant prints what was expected and aborts,
// which libFuzzer reports as a crash with the input saved as a reproducer.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::fuzz {

[[noreturn]] inline void fail(const char* what, std::string_view detail = {}) {
    std::fprintf(stderr, "\nINVARIANT FAILED: %s\n", what);
    if (!detail.empty()) {
        std::string shown;
        for (unsigned char c : detail.substr(0, 512)) {
            if (c >= 0x20 && c < 0x7f && c != '\\') {
                shown.push_back(static_cast<char>(c));
            } else {
                char esc[8];
                std::snprintf(esc, sizeof esc, "\\x%02x", c);
                shown += esc;
            }
        }
        std::fprintf(stderr, "  value: \"%s\"%s\n", shown.c_str(),
                     detail.size() > 512 ? " (cut)" : "");
    }
    std::abort();
}

#define FUZZ_CHECK(cond, detail)                             \
    do {                                                     \
        if (!(cond)) ::sandbox::fuzz::fail(#cond, (detail)); \
    } while (0)

/// Splits `bytes` into chunks whose lengths come from `seed` and the bytes themselves, so the
/// fuzzer controls where the cuts fall (mid-line, between CR and LF, inside a %XX ...).
inline std::vector<std::string_view> chunksOf(std::string_view bytes, std::uint8_t seed) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    std::uint32_t state = seed | 1u;
    while (i < bytes.size()) {
        state = state * 1103515245u + 12345u + static_cast<unsigned char>(bytes[i]);
        std::size_t len = 1 + (state >> 16) % (seed % 4 == 0 ? 3u : 17u);
        len = std::min(len, bytes.size() - i);
        out.push_back(bytes.substr(i, len));
        i += len;
    }
    return out;
}

}  // namespace sandbox::fuzz
