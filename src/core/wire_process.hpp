#pragma once
// Wire messages of the process and port-readiness routes:
// one definition per message, used by sandbox-agent and by the SDK.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/wire.hpp"

namespace sandbox::core::wire {

/// Output kept per process (stdout and stderr together) by the agent's ring buffer; older
/// output is dropped first and the drop is reported (`dropped` events, logs fields).
inline constexpr std::size_t kProcessLogRing = 1024 * 1024;

/// POST /api/process/start
struct StartProcessRequest {
    std::string command;
    std::optional<std::string> sessionId;
    std::optional<std::string> processId;
    std::optional<std::int64_t> timeoutMs;
    EnvMap env;
    std::optional<std::string> cwd;
    std::optional<std::string> encoding;  ///< accepted, ignored (output is UTF-8)
    std::optional<bool> autoCleanup;      ///< accepted, ignored (records are kept)
    std::optional<std::string> origin;
    static StartProcessRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Checks a client-chosen process id: 1-128 characters of [A-Za-z0-9._:@+=~-], not "list" or
/// "kill-all" (they name routes). Returns the problem, or "" when fine.
std::string processIdProblem(std::string_view id);

/// A process as listed by the process routes.
struct ProcessInfo {
    std::string id;
    std::optional<std::int64_t> pid;
    std::string command;
    std::string status;  ///< running, completed, failed, killed, error
    std::string startTime;
    std::optional<std::string> endTime;
    std::optional<int> exitCode;
    static ProcessInfo fromJson(const nlohmann::json& j);
    /// `withEndTime`: GET /api/process/{id} has endTime; list entries do not.
    nlohmann::json toJson(bool withEndTime = true) const;
};

/// Success body of GET /api/process/{id}/logs.
struct ProcessLogsResponse {
    std::string processId;
    std::string stdoutText;
    std::string stderrText;
    std::uint64_t stdoutDroppedBytes = 0;  ///< older output no longer kept (ring buffer)
    std::uint64_t stderrDroppedBytes = 0;
    std::string timestamp;
    static ProcessLogsResponse fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// POST /api/port-watch
struct PortWatchRequest {
    int port = 0;
    std::string mode = "http";  ///< "http" or "tcp" (anything but "tcp" is http, as the reference)
    std::string path = "/";
    int statusMin = 200, statusMax = 399;
    std::optional<std::string> processId;
    std::int64_t intervalMs = 500;  ///< clamped to [100, 10000]
    static PortWatchRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// SSE events of GET /api/process/{id}/stream.
namespace process_event {
std::string info(std::string_view processId, std::string_view command, std::string_view status,
                 std::string_view timestamp);
/// stdout/stderr event; `data` must be valid UTF-8.
std::string output(std::string_view stream, std::string_view data, std::string_view processId,
                   std::string_view timestamp);
/// Output of `stream` that the ring buffer dropped before this reader got it.
std::string dropped(std::string_view stream, std::uint64_t bytes, std::string_view processId,
                    std::string_view timestamp);
std::string exit(std::string_view processId, std::optional<int> exitCode, std::string_view status,
                 std::string_view timestamp);
}  // namespace process_event

/// SSE events of POST /api/port-watch.
namespace port_event {
std::string watching(int port);
std::string ready(int port, std::optional<int> statusCode);
std::string processExited(int port, std::optional<int> exitCode);
std::string error(int port, std::string_view message);
}  // namespace port_event

}  // namespace sandbox::core::wire
