#pragma once
// The WebSocket wire messages: PTY control/status frames (docs/pty.md) and the route
// multiplexer's JSON frames (docs/agent.md). One
// definition, used by the agent, sandboxd, the SDK and the tests.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sandbox::core::wire {

// ---- PTY (text frames; bytes travel in binary frames) ---------------------------------------

/// Bytes of terminal output a PTY keeps for clients that (re)connect.
inline constexpr std::size_t kPtyReplayBytes = 256 * 1024;
/// Default terminal size and shell.
inline constexpr int kPtyDefaultCols = 80;
inline constexpr int kPtyDefaultRows = 24;

/// A PTY control or status message. `type` is "ready", "exit", "error" (server to client) or
/// "resize" (client to server); other types are carried as they are.
struct PtyMessage {
    std::string type;
    std::optional<double> cols, rows;    ///< resize (raw JSON numbers, validated by the server)
    std::optional<int> code;             ///< exit
    std::optional<std::string> signal;   ///< exit, when a signal ended the shell
    std::optional<std::string> message;  ///< error
};

/// {"type":"ready"}
std::string ptyReady();
/// {"type":"exit","code":N[,"signal":"SIGX"]}
std::string ptyExit(int code, const std::optional<std::string>& signal = std::nullopt);
/// {"type":"error","message":M}
std::string ptyError(std::string_view message);
/// {"type":"resize","cols":C,"rows":R}
std::string ptyResize(int cols, int rows);
/// Parses a text frame; nullopt when it is not a JSON object with a string `type`.
std::optional<PtyMessage> parsePtyMessage(std::string_view text);

// ---- the route multiplexer (/ws, /api/ws) ---------------------------------------------------

/// A client frame: {"type":"request",...} or {"type":"cancel","id":...}.
struct WsRequest {
    std::string type;  ///< "request" or "cancel"
    std::string id;
    std::string method = "GET";
    std::string path;
    std::optional<nlohmann::json> body;
    std::vector<std::pair<std::string, std::string>> headers;  ///< as sent (names as given)
};

/// Why a client frame was refused.
enum class WsParseError { None, NotJson, InvalidRequest };

/// Parses a client frame. Only `type` is required (as the reference); other fields take
/// defaults when absent or of the wrong type. JSON nested deeper than core::parseJson allows
/// (1024 levels) is NotJson.
std::optional<WsRequest> parseWsRequest(std::string_view text, WsParseError& error);
/// Serialises a client frame (used by clients and tests).
std::string wsRequestJson(const WsRequest& r);

/// {"type":"response","id":..,"status":..,["body":..,]"done":true}
std::string wsResponse(std::string_view id, int status, const std::optional<nlohmann::json>& body);
/// {"type":"stream","id":..,["event":..,]"data":..}
std::string wsStream(std::string_view id, const std::optional<std::string>& event,
                     std::string_view data);
/// {"type":"error",["id":..,]"code":..,"message":..,"status":..}
std::string wsError(const std::optional<std::string>& id, std::string_view code,
                    std::string_view message, int status);

}  // namespace sandbox::core::wire
