#pragma once
// Writing Server-Sent Events (the servers' side; the SDK's public sse.hpp only parses them).
#include <string>
#include <string_view>

namespace sandbox::core {

/// Format one event as SSE text: optional "event: X\n", optional "id: X\n", one "data: " line per
/// line of data (split on "\n"; "\r\n" and "\r" also count as line breaks, so the parsed data has
/// them normalised to "\n"), then "\n". Appends to out. Throws std::invalid_argument when event
/// or id contains CR or LF (they would corrupt the framing).
void formatSseEvent(std::string& out, std::string_view data, std::string_view event = {},
                    std::string_view id = {});

/// Append an SSE comment line (": text\n\n"), used as a keep-alive. A multi-line text becomes
/// one comment line per line.
void formatSseComment(std::string& out, std::string_view text);

}  // namespace sandbox::core
