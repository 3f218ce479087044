// base64 (src/core/base64.*): encoding round-trips, the streaming encoder agrees with the
// one-shot one, and the strict decoder agrees with a plain reference implementation of its
// documented rules on arbitrary text (accepting exactly the same inputs, with the same bytes).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/base64.hpp"
#include "fuzz_common.hpp"

using namespace sandbox::core;
using sandbox::fuzz::chunksOf;

namespace {

int sextetOf(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// base64.hpp's rules, written the slow way: length a multiple of 4, the standard alphabet,
// '=' only as one or two final characters; unused low bits of the last group are ignored.
std::optional<std::string> referenceDecode(std::string_view text) {
    if (text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    if (!text.empty() && text.back() == '=')
        pad = text.size() >= 2 && text[text.size() - 2] == '=' ? 2 : 1;
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (std::size_t i = 0; i < text.size() - pad; ++i) {
        int v = sextetOf(text[i]);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    // "==" needs two data characters before it in its group, "=" three.
    if (pad && (text.size() - pad) % 4 != 4 - pad) return std::nullopt;
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(bytes), size);

    // Encoding: size, alphabet, round trip.
    const std::string enc = base64Encode(in);
    FUZZ_CHECK(enc.size() == base64EncodedSize(in.size()), enc);
    FUZZ_CHECK(isBase64Charset(enc), enc);
    auto back = base64Decode(enc);
    FUZZ_CHECK(back && *back == in, enc);
    std::string appended = "x";
    base64EncodeAppend(appended, in);
    FUZZ_CHECK(appended == "x" + enc, appended);

    // The streaming encoder, chunks cut where the input says.
    if (size > 0) {
        Base64StreamEncoder stream;
        std::string streamed;
        for (auto piece : chunksOf(in.substr(1), bytes[0])) stream.feed(piece, streamed);
        stream.finish(streamed);
        FUZZ_CHECK(streamed == base64Encode(in.substr(1)), streamed);
    }

    // Decoding arbitrary text: same verdict and bytes as the reference; a success re-encodes to
    // the same length and decodes the same again.
    std::string out = "garbage";
    const bool ok = base64Decode(in, out);
    const auto ref = referenceDecode(in);
    FUZZ_CHECK(ok == ref.has_value(), in);
    if (ok) {
        FUZZ_CHECK(out == *ref, in);
        const std::string again = base64Encode(out);
        FUZZ_CHECK(again.size() == in.size(), again);
        FUZZ_CHECK(base64Decode(again) == out, again);
        FUZZ_CHECK(isBase64Charset(in), in);
    }

    // base32: length and alphabet.
    const std::string b32 = base32Lower(in);
    FUZZ_CHECK(b32.size() == (in.size() * 8 + 4) / 5, b32);
    for (char c : b32) FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'), b32);
    return 0;
}
