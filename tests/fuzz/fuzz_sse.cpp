// The SSE parser (include/sandbox/sse.hpp): one stream fed whole and fed in chunks cut where the
// input says must give the same events, last event id and reconnection time; a small size limit
// must bound every event and leave the parser usable after it throws; formatSseEvent's output
// must parse back to what was formatted.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>
#include "core/sse_writer.hpp"

#include "fuzz_common.hpp"
#include "sandbox/sse.hpp"

using sandbox::SseEvent;
using sandbox::SseParser;
using sandbox::fuzz::chunksOf;

namespace {

struct Outcome {
    std::vector<SseEvent> events;
    std::string lastEventId;
    std::optional<std::chrono::milliseconds> reconnection;
};

// Feeds every piece, then finish(); the final (unterminated) event counts as an event.
Outcome run(const std::vector<std::string_view>& pieces) {
    SseParser p;
    Outcome o;
    for (auto piece : pieces) p.feed(piece, o.events);
    o.lastEventId = p.lastEventId();
    if (auto last = p.finish()) o.events.push_back(std::move(*last));
    o.reconnection = p.reconnectionTime();
    return o;
}

bool sameEvent(const SseEvent& a, const SseEvent& b) {
    return a.event == b.event && a.data == b.data && a.id == b.id && a.retry == b.retry;
}

std::string describe(const Outcome& o) {
    std::string s = "events=" + std::to_string(o.events.size()) + " lastEventId=" + o.lastEventId;
    for (const auto& e : o.events) s += " [" + e.event + "|" + e.data + "|" + e.id + "]";
    return s;
}

// With a tiny limit: events stay within it, an overflow throws std::length_error only, and the
// parser keeps working for the following chunks.
void boundedRun(const std::vector<std::string_view>& pieces) {
    constexpr std::size_t kLimit = 64;
    SseParser p;
    p.setMaxEventSize(kLimit);
    for (auto piece : pieces) {
        try {
            p.feed(piece, [&](SseEvent&& e) { FUZZ_CHECK(e.data.size() <= kLimit, e.data); });
        } catch (const std::length_error&) {
            // Dropped event; the next chunk continues the stream.
        }
    }
    try {
        if (auto last = p.finish()) FUZZ_CHECK(last->data.size() <= kLimit, last->data);
    } catch (const std::length_error&) {
    }
}

// Line breaks in data come back as "\n".
std::string normalisedData(std::string_view data) {
    std::string out;
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] == '\r') {
            out.push_back('\n');
            if (i + 1 < data.size() && data[i + 1] == '\n') ++i;
        } else {
            out.push_back(data[i]);
        }
    }
    return out;
}

void formatRoundTrip(std::string_view input) {
    // event | id | data, split at the first two 0x1f bytes; CR/LF cannot be in event or id.
    auto cut1 = input.find('\x1f');
    auto cut2 = cut1 == std::string_view::npos ? cut1 : input.find('\x1f', cut1 + 1);
    if (cut2 == std::string_view::npos) return;
    std::string event, id;
    for (char c : input.substr(0, cut1))
        if (c != '\r' && c != '\n') event.push_back(c);
    for (char c : input.substr(cut1 + 1, cut2 - cut1 - 1))
        if (c != '\r' && c != '\n' && c != '\0') id.push_back(c);
    std::string_view data = input.substr(cut2 + 1);
    std::string text;
    sandbox::core::formatSseEvent(text, data, event, id);
    sandbox::core::formatSseComment(text, data);  // comments produce nothing
    SseParser p;
    std::vector<SseEvent> events;
    p.feed(text, events);
    FUZZ_CHECK(!p.finish().has_value(), text);
    FUZZ_CHECK(events.size() == 1, text);
    FUZZ_CHECK(events[0].event == event, text);
    FUZZ_CHECK(events[0].id == id, text);
    FUZZ_CHECK(events[0].data == normalisedData(data), text);
    FUZZ_CHECK(!events[0].retry.has_value(), text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t seed = bytes[0];
    std::string_view stream(reinterpret_cast<const char*>(bytes) + 1, size - 1);

    const Outcome whole = run({stream});
    const Outcome chunked = run(chunksOf(stream, seed));
    std::vector<std::string_view> single;
    for (std::size_t i = 0; i < stream.size(); ++i) single.push_back(stream.substr(i, 1));
    const Outcome bytewise = run(single);

    for (const Outcome* other : {&chunked, &bytewise}) {
        FUZZ_CHECK(other->events.size() == whole.events.size(),
                   describe(whole) + " vs " + describe(*other));
        for (std::size_t i = 0; i < whole.events.size(); ++i)
            FUZZ_CHECK(sameEvent(whole.events[i], other->events[i]),
                       describe(whole) + " vs " + describe(*other));
        FUZZ_CHECK(other->lastEventId == whole.lastEventId, other->lastEventId);
        FUZZ_CHECK(other->reconnection == whole.reconnection, describe(*other));
    }
    for (const auto& e : whole.events) {
        FUZZ_CHECK(e.data.find('\r') == std::string::npos, e.data);  // CR ends a line
        FUZZ_CHECK(e.id.find('\0') == std::string::npos, e.id);
        FUZZ_CHECK(e.event.find_first_of("\r\n") == std::string::npos, e.event);
    }

    boundedRun(chunksOf(stream, seed));
    formatRoundTrip(stream);
    return 0;
}
