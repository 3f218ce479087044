#include "core/base64.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

namespace sandbox::core {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Two output characters for every 12-bit input value: one lookup per 12 bits instead of 6.
constexpr std::array<char, 8192> makePairTable() {
    std::array<char, 8192> t{};
    for (unsigned v = 0; v < 4096; ++v) {
        t[2 * v] = kAlphabet[v >> 6];
        t[2 * v + 1] = kAlphabet[v & 63];
    }
    return t;
}
constexpr auto kPairs = makePairTable();

constexpr int sextet(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Decoding tables: the value of a character already shifted into its place in the 24-bit group,
// so a group is the OR of four lookups. Invalid characters (including '=') set kBad.
constexpr std::uint32_t kBad = 0x01000000u;
struct DecodeTables {
    std::uint32_t t[4][256];
};
constexpr DecodeTables makeDecodeTables() {
    DecodeTables d{};
    for (unsigned c = 0; c < 256; ++c) {
        const int v = sextet(static_cast<unsigned char>(c));
        for (unsigned k = 0; k < 4; ++k) {
            d.t[k][c] = v < 0 ? kBad : static_cast<std::uint32_t>(v) << (18 - 6 * k);
        }
    }
    return d;
}
constexpr DecodeTables kDec = makeDecodeTables();

constexpr std::array<bool, 256> makeCharsetTable() {
    std::array<bool, 256> t{};
    for (unsigned c = 0; c < 256; ++c)
        t[c] = sextet(static_cast<unsigned char>(c)) >= 0 || c == '=';
    return t;
}
constexpr auto kCharset = makeCharsetTable();

inline void putPair(char* dst, std::uint32_t v12) noexcept {
    std::memcpy(dst, &kPairs[2 * v12], 2);
}

inline std::uint64_t byteSwap64(std::uint64_t v) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    return __builtin_bswap64(v);
#else
    std::uint64_t r = 0;
    for (int i = 0; i < 8; ++i, v >>= 8) r = (r << 8) | (v & 0xFF);
    return r;
#endif
}

// The 6 bytes at p as a big-endian 48-bit number. Reads 8 bytes (p[6], p[7] must be readable).
inline std::uint64_t load48(const unsigned char* p) noexcept {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    if constexpr (std::endian::native == std::endian::little) v = byteSwap64(v);
    return v >> 16;
}

// Encodes n/3 complete groups (n a multiple of 3) from src to dst; returns the end of the output.
char* encodeGroups(const unsigned char* src, std::size_t n, char* dst) noexcept {
    const unsigned char* const end = src + n;
    // Two groups (6 bytes -> 8 characters) per 8-byte load, unrolled twice. The last load of an
    // iteration reads 2 bytes past the 12 it consumes, so at least 14 must remain.
    while (end - src >= 14) {
        for (int k = 0; k < 2; ++k) {
            const std::uint64_t x = load48(src);
            putPair(dst, static_cast<std::uint32_t>(x >> 36) & 0xFFF);
            putPair(dst + 2, static_cast<std::uint32_t>(x >> 24) & 0xFFF);
            putPair(dst + 4, static_cast<std::uint32_t>(x >> 12) & 0xFFF);
            putPair(dst + 6, static_cast<std::uint32_t>(x) & 0xFFF);
            src += 6;
            dst += 8;
        }
    }
    while (src != end) {
        const std::uint32_t x =
            (std::uint32_t{src[0]} << 16) | (std::uint32_t{src[1]} << 8) | std::uint32_t{src[2]};
        putPair(dst, x >> 12);
        putPair(dst + 2, x & 0xFFF);
        src += 3;
        dst += 4;
    }
    return dst;
}

// Encodes the final 1 or 2 bytes with padding.
void encodeTail(const unsigned char* src, std::size_t n, char* dst) noexcept {
    const std::uint32_t b0 = src[0];
    const std::uint32_t b1 = n > 1 ? src[1] : 0;
    dst[0] = kAlphabet[b0 >> 2];
    dst[1] = kAlphabet[((b0 & 3) << 4) | (b1 >> 4)];
    dst[2] = n > 1 ? kAlphabet[(b1 & 15) << 2] : '=';
    dst[3] = '=';
}

void encodeInto(char* dst, std::string_view bytes) noexcept {
    const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t full = bytes.size() / 3 * 3;
    dst = encodeGroups(src, full, dst);
    if (full != bytes.size()) encodeTail(src + full, bytes.size() - full, dst);
}

}  // namespace

std::string base64Encode(std::string_view bytes) {
    std::string out;
    base64EncodeAppend(out, bytes);
    return out;
}

void base64EncodeAppend(std::string& out, std::string_view bytes) {
    const std::size_t old = out.size();
    out.resize(old + base64EncodedSize(bytes.size()));
    encodeInto(out.data() + old, bytes);
}

bool base64Decode(std::string_view text, std::string& out) {
    const std::size_t n = text.size();
    out.clear();
    if (n == 0) return true;
    if (n % 4 != 0) return false;
    const auto* s = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t pad = s[n - 1] != '=' ? 0 : (s[n - 2] != '=' ? 1 : 2);
    out.resize(n / 4 * 3 - pad);
    auto* dst = reinterpret_cast<unsigned char*>(out.data());

    // All groups but the last: no padding allowed ('=' is an invalid character in the tables).
    const unsigned char* const lastGroup = s + n - 4;
    std::uint32_t bad = 0;
    for (; s != lastGroup; s += 4, dst += 3) {
        const std::uint32_t x =
            kDec.t[0][s[0]] | kDec.t[1][s[1]] | kDec.t[2][s[2]] | kDec.t[3][s[3]];
        bad |= x;
        dst[0] = static_cast<unsigned char>(x >> 16);
        dst[1] = static_cast<unsigned char>(x >> 8);
        dst[2] = static_cast<unsigned char>(x);
    }
    // The last group, with 0-2 padding characters.
    std::uint32_t x = kDec.t[0][s[0]] | kDec.t[1][s[1]];
    if (pad < 2) x |= kDec.t[2][s[2]];
    if (pad < 1) x |= kDec.t[3][s[3]];
    bad |= x;
    if (bad & kBad) return false;
    dst[0] = static_cast<unsigned char>(x >> 16);
    if (pad < 2) dst[1] = static_cast<unsigned char>(x >> 8);
    if (pad < 1) dst[2] = static_cast<unsigned char>(x);
    return true;
}

std::optional<std::string> base64Decode(std::string_view text) {
    std::string out;
    if (!base64Decode(text, out)) return std::nullopt;
    return out;
}

bool isBase64Charset(std::string_view text) noexcept {
    bool ok = true;
    for (char c : text) ok &= kCharset[static_cast<unsigned char>(c)];
    return ok;
}

void Base64StreamEncoder::feed(std::string_view bytes, std::string& out) {
    const auto* src = reinterpret_cast<const unsigned char*>(bytes.data());
    std::size_t n = bytes.size();
    if (pendingLen_ + n < 3) {
        for (std::size_t i = 0; i < n; ++i) pending_[pendingLen_++] = src[i];
        return;
    }
    const std::size_t take = pendingLen_ == 0 ? 0 : 3 - pendingLen_;
    const std::size_t full = (n - take) / 3 * 3;
    const std::size_t old = out.size();
    out.resize(old + (take ? 4 : 0) + full / 3 * 4);
    char* dst = out.data() + old;
    if (take) {
        unsigned char group[3];
        std::memcpy(group, pending_, pendingLen_);
        std::memcpy(group + pendingLen_, src, take);
        dst = encodeGroups(group, 3, dst);
        src += take;
        n -= take;
    }
    encodeGroups(src, full, dst);
    pendingLen_ = static_cast<unsigned>(n - full);
    if (pendingLen_) std::memcpy(pending_, src + full, pendingLen_);
}

void Base64StreamEncoder::finish(std::string& out) {
    if (pendingLen_) {
        const std::size_t old = out.size();
        out.resize(old + 4);
        encodeTail(pending_, pendingLen_, out.data() + old);
    }
    pendingLen_ = 0;
}

std::string base32Lower(std::string_view bytes) {
    static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    std::string out;
    out.reserve((bytes.size() * 8 + 4) / 5);
    unsigned buffer = 0;
    int bits = 0;
    for (unsigned char b : bytes) {
        buffer = (buffer << 8) | b;
        bits += 8;
        while (bits >= 5) {
            out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
            bits -= 5;
        }
    }
    if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
    return out;
}

}  // namespace sandbox::core
