#include "core/wire_process.hpp"

#include <algorithm>
#include <cstring>

#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/wire_json.hpp"

namespace sandbox::core::wire {
using nlohmann::json;
using namespace json_io;

StartProcessRequest StartProcessRequest::fromJson(const json& j) {
    Fields f(j);
    StartProcessRequest r;
    r.command = f.reqString("command");
    r.sessionId = f.optString("sessionId");
    r.processId = f.optString("processId");
    r.timeoutMs = f.optInt("timeoutMs", 0);
    r.env = f.optStringMap("env");
    r.cwd = f.optString("cwd");
    r.encoding = f.optString("encoding");
    r.autoCleanup = f.optBool("autoCleanup");
    r.origin = f.optString("origin");
    return r;
}

json StartProcessRequest::toJson() const {
    json j = {{"command", command}};
    putOpt(j, "sessionId", sessionId);
    if (processId) j["processId"] = *processId;
    if (timeoutMs) j["timeoutMs"] = *timeoutMs;
    if (!env.empty()) {
        json e = json::object();
        for (auto& [k, v] : env) e[k] = v ? json(*v) : json(nullptr);
        j["env"] = std::move(e);
    }
    if (cwd) j["cwd"] = *cwd;
    if (encoding) j["encoding"] = *encoding;
    if (autoCleanup) j["autoCleanup"] = *autoCleanup;
    if (origin) j["origin"] = *origin;
    return j;
}

std::string processIdProblem(std::string_view id) {
    if (id.empty()) return "must not be empty";
    if (id.size() > 128) return "must be at most 128 characters";
    if (id == "list" || id == "kill-all") return "'" + std::string(id) + "' names a route";
    for (unsigned char c : id)
        if (!std::isalnum(c) && !std::strchr("._:@+=~-", c))
            return "may contain only letters, digits and . _ : @ + = ~ -";
    return {};
}

ProcessInfo ProcessInfo::fromJson(const json& j) {
    ProcessInfo p;
    p.id = str(j, "id");
    p.pid = optNum(j, "pid");
    p.command = str(j, "command");
    p.status = str(j, "status");
    p.startTime = str(j, "startTime");
    if (auto it = j.find("endTime"); it != j.end() && it->is_string())
        p.endTime = it->get<std::string>();
    if (auto c = optNum(j, "exitCode")) p.exitCode = static_cast<int>(*c);
    return p;
}

json ProcessInfo::toJson(bool withEndTime) const {
    json j = {{"id", id}};
    if (pid) j["pid"] = *pid;
    j["command"] = command;
    j["status"] = status;
    j["startTime"] = startTime;
    if (withEndTime && endTime) j["endTime"] = *endTime;
    if (exitCode) j["exitCode"] = *exitCode;
    return j;
}

ProcessLogsResponse ProcessLogsResponse::fromJson(const json& j) {
    ProcessLogsResponse r;
    r.processId = str(j, "processId");
    r.stdoutText = str(j, "stdout");
    r.stderrText = str(j, "stderr");
    r.stdoutDroppedBytes = unum(j, "stdoutDroppedBytes");
    r.stderrDroppedBytes = unum(j, "stderrDroppedBytes");
    r.timestamp = str(j, "timestamp");
    return r;
}

json ProcessLogsResponse::toJson() const {
    return {{"success", true},
            {"processId", processId},
            {"stdout", stdoutText},
            {"stderr", stderrText},
            {"stdoutDroppedBytes", stdoutDroppedBytes},
            {"stderrDroppedBytes", stderrDroppedBytes},
            {"timestamp", timestamp}};
}

PortWatchRequest PortWatchRequest::fromJson(const json& j) {
    Fields f(j);
    PortWatchRequest r;
    auto port = f.optInt("port", 1, 65535);
    if (!port) throw validationError("port is required", "port", "REQUIRED", "port is required");
    r.port = static_cast<int>(*port);
    r.mode = f.optString("mode").value_or("http");
    if (r.mode != "tcp") r.mode = "http";
    r.path = f.optString("path").value_or("/");
    if (r.path.empty() || r.path[0] != '/') r.path.insert(r.path.begin(), '/');
    if (r.path.find_first_of(" \r\n\t") != std::string::npos ||
        r.path.find('\0') != std::string::npos)
        throw validationError("path must not contain whitespace or control characters", "path",
                              "INVALID_PATH", "must not contain whitespace or control characters");
    r.statusMin = static_cast<int>(f.optInt("statusMin", 100, 599).value_or(200));
    r.statusMax = static_cast<int>(f.optInt("statusMax", 100, 599).value_or(399));
    if (r.statusMin > r.statusMax)
        throw validationError("statusMin must not exceed statusMax", "statusMin", "INVALID_RANGE",
                              "must not exceed statusMax");
    r.processId = f.optString("processId");
    r.intervalMs = std::clamp<std::int64_t>(f.optInt("interval", 0).value_or(500), 100, 10000);
    return r;
}

json PortWatchRequest::toJson() const {
    json j = {{"port", port},           {"mode", mode},           {"path", path},
              {"statusMin", statusMin}, {"statusMax", statusMax}, {"interval", intervalMs}};
    if (processId) j["processId"] = *processId;
    return j;
}

namespace process_event {
std::string info(std::string_view processId, std::string_view command, std::string_view status,
                 std::string_view timestamp) {
    return json{{"type", "process_info"},
                {"processId", processId},
                {"command", command},
                {"status", status},
                {"timestamp", timestamp}}
        .dump();
}
std::string output(std::string_view stream, std::string_view data, std::string_view processId,
                   std::string_view timestamp) {
    return json{
        {"type", stream}, {"data", data}, {"processId", processId}, {"timestamp", timestamp}}
        .dump();
}
std::string dropped(std::string_view stream, std::uint64_t bytes, std::string_view processId,
                    std::string_view timestamp) {
    return json{{"type", "dropped"},
                {"stream", stream},
                {"bytes", bytes},
                {"data", "[" + std::to_string(bytes) + " bytes of " + std::string(stream) +
                             " dropped: the agent keeps the last " +
                             std::to_string(kProcessLogRing) + " bytes of output per process]"},
                {"processId", processId},
                {"timestamp", timestamp}}
        .dump();
}
std::string exit(std::string_view processId, std::optional<int> exitCode, std::string_view status,
                 std::string_view timestamp) {
    json j = {{"type", "exit"}, {"processId", processId}};
    if (exitCode) j["exitCode"] = *exitCode;
    j["data"] = "Process " + std::string(status) + " with exit code " +
                (exitCode ? std::to_string(*exitCode) : std::string("undefined"));
    j["timestamp"] = timestamp;
    return j.dump();
}
}  // namespace process_event

namespace port_event {
std::string watching(int port) {
    return json{{"type", "watching"}, {"port", port}}.dump();
}
std::string ready(int port, std::optional<int> statusCode) {
    json j = {{"type", "ready"}, {"port", port}};
    if (statusCode) j["statusCode"] = *statusCode;
    return j.dump();
}
std::string processExited(int port, std::optional<int> exitCode) {
    json j = {{"type", "process_exited"}, {"port", port}};
    if (exitCode) j["exitCode"] = *exitCode;
    return j.dump();
}
std::string error(int port, std::string_view message) {
    return json{{"type", "error"}, {"port", port}, {"error", message}}.dump();
}
}  // namespace port_event

}  // namespace sandbox::core::wire
