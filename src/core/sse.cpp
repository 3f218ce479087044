#include "sandbox/sse.hpp"

#include "core/sse_writer.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sandbox {

namespace {

constexpr unsigned char kBom[3] = {0xEF, 0xBB, 0xBF};

// First CR or LF in [p, end), or end.
inline const char* findLineEnd(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    while (end - p >= 32) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16));
        const __m128i ma = _mm_or_si128(_mm_cmpeq_epi8(a, cr), _mm_cmpeq_epi8(a, lf));
        const __m128i mb = _mm_or_si128(_mm_cmpeq_epi8(b, cr), _mm_cmpeq_epi8(b, lf));
        const unsigned m = static_cast<unsigned>(_mm_movemask_epi8(ma)) |
                           (static_cast<unsigned>(_mm_movemask_epi8(mb)) << 16);
        if (m != 0) return p + __builtin_ctz(m);
        p += 32;
    }
    if (end - p >= 16) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const unsigned m = static_cast<unsigned>(
            _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(a, cr), _mm_cmpeq_epi8(a, lf))));
        if (m != 0) return p + __builtin_ctz(m);
        p += 16;
    }
    for (; p != end; ++p) {
        if (*p == '\n' || *p == '\r') return p;
    }
    return end;
#else
    const auto* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* limit = lf ? lf : end;
    const auto* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<size_t>(limit - p)));
    return cr ? cr : limit;
#endif
}

// WHATWG: the value must be non-empty and consist only of ASCII digits. Large values saturate.
std::optional<std::chrono::milliseconds> parseRetry(std::string_view v) noexcept {
    if (v.empty()) return std::nullopt;
    using Rep = std::chrono::milliseconds::rep;
    constexpr Rep kMax = std::numeric_limits<Rep>::max();
    Rep n = 0;
    for (char c : v) {
        if (c < '0' || c > '9') return std::nullopt;
        const Rep d = c - '0';
        n = (n > (kMax - d) / 10) ? kMax : n * 10 + d;
    }
    return std::chrono::milliseconds(n);
}

// Appends each line of `text` (split on CRLF, LF or CR) as prefix + line + "\n".
void appendLines(std::string& out, std::string_view prefix, std::string_view text) {
    const char* p = text.data();
    const char* const end = p + text.size();
    for (;;) {
        const char* eol = findLineEnd(p, end);
        out.append(prefix);
        out.append(p, eol);
        out.push_back('\n');
        if (eol == end) break;
        p = eol + 1;
        if (*eol == '\r' && p != end && *p == '\n') ++p;
    }
}

}  // namespace

void SseParser::feed(std::string_view chunk, std::vector<SseEvent>& out) {
    feed(chunk, [&out](SseEvent&& e) { out.push_back(std::move(e)); });
}

const char* SseParser::consume(const char* p, const char* end) {
    if (dispatched_) clearEvent();
    if (!bomDone_) {
        p = skipBom(p, end);
        if (p == end) return p;
    }
    if (pendingCr_) {
        pendingCr_ = false;
        if (*p == '\n' && ++p == end) return p;
    }
    while (p != end) {
        const char* eol = findLineEnd(p, end);
        if (eol == end) {
            stashPartialLine(p, end);
            return end;
        }
        const char* next = eol + 1;
        if (*eol == '\r') {
            if (next == end) {
                pendingCr_ = true;
            } else if (*next == '\n') {
                ++next;
            }
        }
        bool ready;
        if (skippingLine_) {
            skippingLine_ = false;
            ready = false;
        } else if (line_.empty()) {
            ready = processLine(std::string_view(p, static_cast<size_t>(eol - p)));
        } else {
            line_.append(p, eol);
            ready = processLine(line_);
            line_.clear();
        }
        p = next;
        if (ready) return p;
    }
    return end;
}

const char* SseParser::skipBom(const char* p, const char* end) {
    while (p != end && bomMatched_ < 3) {
        if (static_cast<unsigned char>(*p) != kBom[bomMatched_]) {
            // Not a BOM after all: the bytes matched so far start the first line.
            line_.append(reinterpret_cast<const char*>(kBom), bomMatched_);
            bomDone_ = true;
            return p;
        }
        ++bomMatched_;
        ++p;
    }
    if (bomMatched_ == 3) bomDone_ = true;
    return p;
}

void SseParser::stashPartialLine(const char* p, const char* end) {
    if (skippingLine_) return;
    if (line_.empty() && *p == ':') {  // a comment: nothing to keep
        skippingLine_ = true;
        return;
    }
    const auto n = static_cast<size_t>(end - p);
    if (n > maxEventSize_ || line_.size() + current_.data.size() > maxEventSize_ - n) overflow();
    line_.append(p, n);
}

bool SseParser::processLine(std::string_view line) {
    if (line.empty()) return dispatchPending();
    const char* s = line.data();
    const size_t n = line.size();
    // Fast path for the overwhelmingly common field.
    if (n >= 5 && std::memcmp(s, "data:", 5) == 0) {
        size_t v = 5;
        if (v < n && s[v] == ' ') ++v;
        appendData(line.substr(v));
        return false;
    }
    if (s[0] == ':') return false;  // comment
    std::string_view field = line;
    std::string_view value;
    if (const auto* colon = static_cast<const char*>(std::memchr(s, ':', n))) {
        const auto c = static_cast<size_t>(colon - s);
        field = line.substr(0, c);
        size_t v = c + 1;
        if (v < n && s[v] == ' ') ++v;
        value = line.substr(v);
    }
    if (field == "data") {
        appendData(value);
    } else if (field == "event") {
        current_.event.assign(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) idBuffer_.assign(value);
    } else if (field == "retry") {
        if (auto r = parseRetry(value)) {
            current_.retry = r;
            reconnection_ = r;
        }
    }
    return false;
}

bool SseParser::dispatchPending() {
    if (lastEventId_ != idBuffer_) lastEventId_ = idBuffer_;
    if (current_.data.empty()) {
        current_.event.clear();
        current_.retry.reset();
        return false;
    }
    current_.data.pop_back();  // the "\n" appended after the last data line
    current_.id = idBuffer_;
    dispatched_ = true;
    return true;
}

void SseParser::appendData(std::string_view value) {
    std::string& d = current_.data;
    if (value.size() >= maxEventSize_ || d.size() > maxEventSize_ - value.size() - 1) overflow();
    d.append(value);
    d.push_back('\n');
}

void SseParser::clearEvent() noexcept {
    current_.data.clear();
    current_.event.clear();
    current_.retry.reset();
    dispatched_ = false;
}

void SseParser::overflow() {
    clearEvent();
    line_.clear();
    line_.shrink_to_fit();
    current_.data.shrink_to_fit();
    throw std::length_error("SSE event exceeds the maximum event size");
}

std::optional<SseEvent> SseParser::finish() {
    if (dispatched_) clearEvent();
    if (!bomDone_) line_.assign(reinterpret_cast<const char*>(kBom), bomMatched_);
    if (!skippingLine_ && !line_.empty()) processLine(line_);  // non-empty: never dispatches
    std::optional<SseEvent> result;
    if (dispatchPending()) result.emplace(std::move(current_));
    clearEvent();
    line_.clear();
    bomMatched_ = 0;
    bomDone_ = false;
    pendingCr_ = false;
    skippingLine_ = false;
    return result;
}

void SseParser::reset() {
    current_ = SseEvent{};
    line_.clear();
    idBuffer_.clear();
    lastEventId_.clear();
    reconnection_.reset();
    bomMatched_ = 0;
    bomDone_ = false;
    pendingCr_ = false;
    skippingLine_ = false;
    dispatched_ = false;
}

void core::formatSseEvent(std::string& out, std::string_view data, std::string_view event,
                          std::string_view id) {
    constexpr std::string_view kBreaks("\r\n", 2);
    if (event.find_first_of(kBreaks) != std::string_view::npos)
        throw std::invalid_argument("SSE event type must not contain CR or LF");
    if (id.find_first_of(kBreaks) != std::string_view::npos)
        throw std::invalid_argument("SSE event id must not contain CR or LF");
    out.reserve(out.size() + data.size() + event.size() + id.size() + 32);
    if (!event.empty()) {
        out.append("event: ");
        out.append(event);
        out.push_back('\n');
    }
    if (!id.empty()) {
        out.append("id: ");
        out.append(id);
        out.push_back('\n');
    }
    appendLines(out, "data: ", data);
    out.push_back('\n');
}

void core::formatSseComment(std::string& out, std::string_view text) {
    appendLines(out, ": ", text);
    out.push_back('\n');
}

}  // namespace sandbox
