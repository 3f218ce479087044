#pragma once
// Base64 (RFC 4648 §4: standard alphabet, with padding).
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sandbox::core {

/// Length of the padded base64 encoding of `n` bytes.
constexpr std::size_t base64EncodedSize(std::size_t n) noexcept {
    return (n + 2) / 3 * 4;
}

/// Encode `bytes` as padded standard base64.
std::string base64Encode(std::string_view bytes);

/// Append the padded standard base64 encoding of `bytes` to `out`.
void base64EncodeAppend(std::string& out, std::string_view bytes);

/// Strict decode into `out` (its previous contents are replaced): standard alphabet only,
/// length a multiple of 4, '=' only as one or two final padding characters, no whitespace.
/// Non-zero bits in the unused part of the last group are accepted (as most decoders do).
/// Returns false on invalid input; `out` is then unspecified.
bool base64Decode(std::string_view text, std::string& out);

/// Strict decode (same rules as above); std::nullopt on invalid input.
std::optional<std::string> base64Decode(std::string_view text);

/// True iff every character is in [A-Za-z0-9+/=] (the container API's lenient pre-check; an
/// empty string passes).
bool isBase64Charset(std::string_view text) noexcept;

/// Incremental encoder for chunked output: each feed() emits only complete 4-character groups
/// and keeps 0-2 leftover bytes, so the concatenated output of all feed() calls plus finish()
/// equals base64Encode() of the concatenated input.
class Base64StreamEncoder {
  public:
    /// Encode `bytes` (following any leftover bytes) and append complete groups to `out`.
    void feed(std::string_view bytes, std::string& out);

    /// Append the final (padded) group for any leftover bytes, then reset for a new stream.
    void finish(std::string& out);

  private:
    unsigned char pending_[2] = {0, 0};
    unsigned pendingLen_ = 0;
};

/// Lower-case RFC 4648 base32 without padding (alphabet a-z2-7): the bridge's sandbox-id
/// alphabet. Deterministic and injective.
std::string base32Lower(std::string_view bytes);

}  // namespace sandbox::core
