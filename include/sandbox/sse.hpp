#pragma once
// Server-Sent Events: an incremental parser (WHATWG "event stream interpretation") and a writer.
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandbox {

/// One dispatched SSE event.
struct SseEvent {
    std::string event;  ///< value of the last `event:` field ("" when none was given)
    std::string data;   ///< `data:` lines joined with "\n" (no trailing newline)
    std::string id;     ///< last event id in effect when this event was dispatched
    std::optional<std::chrono::milliseconds> retry;  ///< `retry:` seen in this event, if any
};

/// Incremental SSE parser: feed it the bytes of a stream in chunks of any size, get events.
/// Bytes are passed through as-is (no UTF-8 decoding); a UTF-8 BOM at the start is skipped.
/// Not thread-safe; one parser per stream.
class SseParser {
  public:
    /// Default limit on the size of one pending event (data buffer plus the current line).
    static constexpr std::size_t kDefaultMaxEventSize = std::size_t{64} * 1024 * 1024;

    /// Feed the next chunk (any boundary, even mid-line or mid-CRLF); calls onEvent(SseEvent&&)
    /// or onEvent(const SseEvent&) for each complete event. Throws std::length_error when the
    /// pending event grows beyond maxEventSize() (the pending event is then discarded). If
    /// onEvent throws, the exception propagates and the rest of the chunk is not consumed.
    template <class F>
    void feed(std::string_view chunk, F&& onEvent) {
        const char* p = chunk.data();
        const char* const end = p + chunk.size();
        while (p != end) {
            p = consume(p, end);
            if (dispatched_) onEvent(std::move(current_));
        }
    }

    /// Convenience overload appending each complete event to `out`.
    void feed(std::string_view chunk, std::vector<SseEvent>& out);

    /// End of stream: returns the pending event if it has data (an unterminated final event is
    /// flushed, as the TypeScript SDK's parser does). Behaves as if the stream ended with a
    /// line break and a blank line. Afterwards the parser is ready for a new stream (a
    /// reconnection): BOM detection restarts, lastEventId() and reconnectionTime() are kept.
    std::optional<SseEvent> finish();

    /// Forget everything, including lastEventId() and reconnectionTime(); keeps the size limit.
    void reset();

    /// The last event id committed by a blank line (what a client sends as Last-Event-ID).
    const std::string& lastEventId() const noexcept { return lastEventId_; }

    /// The most recent valid `retry:` value seen in the stream (the reconnection time), if any.
    std::optional<std::chrono::milliseconds> reconnectionTime() const noexcept {
        return reconnection_;
    }

    /// Set the maximum size in bytes of one pending event (data buffer plus the current line).
    void setMaxEventSize(std::size_t bytes) noexcept { maxEventSize_ = bytes; }

    /// The maximum size of one pending event (default kDefaultMaxEventSize).
    std::size_t maxEventSize() const noexcept { return maxEventSize_; }

  private:
    // Consumes bytes from [p, end) (p != end) until an event is ready (dispatched_ is then set
    // and the returned pointer is just past the dispatching blank line) or the input runs out.
    const char* consume(const char* p, const char* end);
    const char* skipBom(const char* p, const char* end);
    void stashPartialLine(const char* p, const char* end);
    bool processLine(std::string_view line);
    bool dispatchPending();
    void appendData(std::string_view value);
    void clearEvent() noexcept;
    [[noreturn]] void overflow();

    SseEvent current_;         // event being assembled; data keeps its trailing "\n" until dispatch
    std::string line_;         // partial line carried over from the previous chunk
    std::string idBuffer_;     // WHATWG "last event ID buffer"
    std::string lastEventId_;  // committed on each blank line
    std::optional<std::chrono::milliseconds> reconnection_;
    std::size_t maxEventSize_ = kDefaultMaxEventSize;
    unsigned char bomMatched_ = 0;  // bytes of a leading BOM seen so far
    bool bomDone_ = false;          // past the point where a BOM may appear
    bool pendingCr_ = false;        // previous chunk ended with a CR line terminator
    bool skippingLine_ = false;     // inside a comment line that spans chunks
    bool dispatched_ = false;       // current_ was handed to the callback and must be cleared
};

}  // namespace sandbox
