#pragma once
// UTF-8 validation and repair (WHATWG Encoding "utf-8 decoder" semantics) and JSON string output.
#include <cstddef>
#include <string>
#include <string_view>

namespace sandbox::core {

/// True iff `text` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
bool isValidUtf8(std::string_view text) noexcept;

/// Returns `text` with every ill-formed sequence replaced by U+FFFD exactly as the WHATWG /
/// JavaScript TextDecoder does (one U+FFFD per maximal subpart; a truncated sequence at the end
/// gives one U+FFFD). Valid input is returned unchanged.
std::string sanitizeUtf8(std::string_view text);

/// Appends the sanitized form of `text` (see sanitizeUtf8) to `out`.
void sanitizeUtf8Append(std::string& out, std::string_view text);

/// Incremental UTF-8 repair, like TextDecoder.decode(chunk, {stream: true}): a multi-byte
/// sequence cut at the end of a chunk is held back and completed by the next chunk.
class Utf8StreamDecoder {
  public:
    /// Decode the next chunk; returns the sanitized text that is complete so far.
    std::string decode(std::string_view chunk);

    /// Like decode(), appending to `out` (no temporary string).
    void decodeAppend(std::string_view chunk, std::string& out);

    /// End of stream: returns U+FFFD if an incomplete sequence is held back (else ""), and
    /// resets the decoder.
    std::string flush();

    /// Like flush(), appending to `out`.
    void flushAppend(std::string& out);

    /// True while an incomplete sequence (1-3 bytes) is held back.
    bool hasPending() const noexcept { return pendingLen_ != 0; }

  private:
    unsigned char pending_[4] = {0, 0, 0, 0};
    unsigned pendingLen_ = 0;
};

/// Appends a JSON string literal (with quotes) for `utf8`: escapes '"', '\\', control
/// characters below 0x20 (\n \r \t \b \f short forms, others \u00xx) and 0x7F (\u007f).
/// Other bytes, including non-ASCII ones, are copied through; the input is assumed to be valid
/// UTF-8.
void appendJsonString(std::string& out, std::string_view utf8);

}  // namespace sandbox::core
