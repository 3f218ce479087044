#include "core/utf8.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sandbox::core {

namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::uint64_t kHighBits = 0x8080808080808080ull;

// For each lead byte: how many continuation bytes follow and the allowed range of the first one
// (Unicode Table 3-7, which is what the WHATWG decoder's lower/upper boundaries encode).
struct Lead {
    std::uint8_t need;  // 0: not a valid lead byte
    std::uint8_t lo;
    std::uint8_t hi;
};
constexpr std::array<Lead, 256> makeLeadTable() {
    std::array<Lead, 256> t{};
    for (unsigned b = 0; b < 256; ++b) {
        Lead l{0, 0x80, 0xBF};
        if (b >= 0xC2 && b <= 0xDF) {
            l.need = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            l.need = 2;
            if (b == 0xE0) l.lo = 0xA0;  // no overlongs
            if (b == 0xED) l.hi = 0x9F;  // no surrogates
        } else if (b >= 0xF0 && b <= 0xF4) {
            l.need = 3;
            if (b == 0xF0) l.lo = 0x90;  // no overlongs
            if (b == 0xF4) l.hi = 0x8F;  // nothing above U+10FFFF
        }
        t[b] = l;
    }
    return t;
}
constexpr auto kLead = makeLeadTable();

enum class Kind { Valid, Invalid, Truncated };
struct Step {
    std::size_t len;  // Valid: sequence length; Invalid: maximal subpart; Truncated: bytes present
    Kind kind;
};

// Examines the sequence at p (avail >= 1 bytes, p[0] >= 0x80).
inline Step examine(const unsigned char* p, std::size_t avail) noexcept {
    const Lead l = kLead[p[0]];
    if (l.need == 0) return {1, Kind::Invalid};
    unsigned char lo = l.lo;
    unsigned char hi = l.hi;
    for (std::size_t k = 1; k <= l.need; ++k) {
        if (k >= avail) return {k, Kind::Truncated};
        if (p[k] < lo || p[k] > hi) return {k, Kind::Invalid};
        lo = 0x80;
        hi = 0xBF;
    }
    return {std::size_t{l.need} + 1, Kind::Valid};
}

// Index of the first non-ASCII byte at or after i (n if none).
inline std::size_t skipAscii(const unsigned char* p, std::size_t i, std::size_t n) noexcept {
    while (n - i >= 16) {
        std::uint64_t a;
        std::uint64_t b;
        std::memcpy(&a, p + i, 8);
        std::memcpy(&b, p + i + 8, 8);
        if ((a | b) & kHighBits) break;
        i += 16;
    }
    while (n - i >= 8) {
        std::uint64_t a;
        std::memcpy(&a, p + i, 8);
        if (const std::uint64_t m = a & kHighBits) {
            if constexpr (std::endian::native == std::endian::little) {
                return i + static_cast<std::size_t>(std::countr_zero(m)) / 8;
            } else {
                break;
            }
        }
        i += 8;
    }
    while (i < n && p[i] < 0x80) ++i;
    return i;
}

// Length of the longest well-formed prefix of [p, p+n) made of complete sequences.
std::size_t validPrefix(const unsigned char* p, std::size_t n) noexcept {
    std::size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) {
            i = skipAscii(p, i, n);
            continue;
        }
        const Step s = examine(p + i, n - i);
        if (s.kind != Kind::Valid) return i;
        i += s.len;
    }
    return n;
}

// Appends the repaired form of [p, p+n). When `stream`, a truncated sequence at the end is not
// emitted and its length (1-3) is returned; otherwise it becomes U+FFFD and 0 is returned.
std::size_t repairAppend(std::string& out, const unsigned char* p, std::size_t n, bool stream) {
    std::size_t i = 0;
    for (;;) {
        const std::size_t k = validPrefix(p + i, n - i);
        out.append(reinterpret_cast<const char*>(p + i), k);
        i += k;
        if (i == n) return 0;
        const Step s = examine(p + i, n - i);
        if (s.kind == Kind::Truncated && stream) return n - i;
        out.append(kReplacement, 3);
        i += s.len;  // Truncated: s.len == n - i, so this ends the input
    }
}

// JSON escape per byte: 0 = copy as is, 'u' = \u00xx, otherwise the short escape letter.
constexpr std::array<char, 256> makeEscapeTable() {
    std::array<char, 256> t{};
    for (unsigned c = 0; c < 0x20; ++c) t[c] = 'u';
    t['\b'] = 'b';
    t['\t'] = 't';
    t['\n'] = 'n';
    t['\f'] = 'f';
    t['\r'] = 'r';
    t['"'] = '"';
    t['\\'] = '\\';
    t[0x7F] = 'u';
    return t;
}
constexpr auto kEscape = makeEscapeTable();

// First byte in [p, end) that needs escaping in a JSON string, or end.
inline const char* findJsonSpecial(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i del = _mm_set1_epi8(0x7F);
    const __m128i ctl = _mm_set1_epi8(0x1F);
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i m = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
            _mm_or_si128(_mm_cmpeq_epi8(v, del), _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v)));
        if (const int mask = _mm_movemask_epi8(m))
            return p + __builtin_ctz(static_cast<unsigned>(mask));
        p += 16;
    }
#endif
    while (p != end && kEscape[static_cast<unsigned char>(*p)] == 0) ++p;
    return p;
}

}  // namespace

bool isValidUtf8(std::string_view text) noexcept {
    return validPrefix(reinterpret_cast<const unsigned char*>(text.data()), text.size()) ==
           text.size();
}

std::string sanitizeUtf8(std::string_view text) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t k = validPrefix(p, text.size());
    if (k == text.size()) return std::string(text);
    std::string out;
    out.reserve(text.size() + text.size() / 8 + 3);
    out.append(text.data(), k);
    repairAppend(out, p + k, text.size() - k, false);
    return out;
}

void sanitizeUtf8Append(std::string& out, std::string_view text) {
    repairAppend(out, reinterpret_cast<const unsigned char*>(text.data()), text.size(), false);
}

std::string Utf8StreamDecoder::decode(std::string_view chunk) {
    std::string out;
    decodeAppend(chunk, out);
    return out;
}

void Utf8StreamDecoder::decodeAppend(std::string_view chunk, std::string& out) {
    const auto* p = reinterpret_cast<const unsigned char*>(chunk.data());
    std::size_t n = chunk.size();
    if (pendingLen_ != 0) {
        // Complete (or refute) the held-back sequence with the first bytes of this chunk.
        unsigned char buf[4];
        std::memcpy(buf, pending_, pendingLen_);
        const std::size_t add = std::min<std::size_t>(4 - pendingLen_, n);
        if (add != 0) std::memcpy(buf + pendingLen_, p, add);
        const Step s = examine(buf, pendingLen_ + add);
        if (s.kind == Kind::Truncated) {  // the chunk ended too: still incomplete
            if (add != 0) std::memcpy(pending_ + pendingLen_, p, add);
            pendingLen_ += static_cast<unsigned>(add);
            return;
        }
        if (s.kind == Kind::Valid) {
            out.append(reinterpret_cast<const char*>(buf), s.len);
        } else {
            out.append(kReplacement, 3);
        }
        // The held-back bytes were a valid prefix, so the sequence or maximal subpart covers them.
        const std::size_t used = s.len - pendingLen_;
        pendingLen_ = 0;
        p += used;
        n -= used;
    }
    const std::size_t held = repairAppend(out, p, n, true);
    if (held != 0) std::memcpy(pending_, p + n - held, held);
    pendingLen_ = static_cast<unsigned>(held);
}

std::string Utf8StreamDecoder::flush() {
    std::string out;
    flushAppend(out);
    return out;
}

void Utf8StreamDecoder::flushAppend(std::string& out) {
    if (pendingLen_ != 0) out.append(kReplacement, 3);
    pendingLen_ = 0;
}

void appendJsonString(std::string& out, std::string_view utf8) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.reserve(out.size() + utf8.size() + 2);
    out.push_back('"');
    const char* p = utf8.data();
    const char* const end = p + utf8.size();
    for (;;) {
        const char* q = findJsonSpecial(p, end);
        out.append(p, q);
        if (q == end) break;
        const auto c = static_cast<unsigned char>(*q);
        const char e = kEscape[c];
        if (e == 'u') {
            const char u[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
            out.append(u, 6);
        } else {
            const char s[2] = {'\\', e};
            out.append(s, 2);
        }
        p = q + 1;
    }
    out.push_back('"');
}

}  // namespace sandbox::core
