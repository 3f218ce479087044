// The SDK's background processes, port readiness and environment variables: Sandbox /
// ExecutionSession methods over the container API's /api/process/*, /api/port-watch and the
// session shells. Over a bridge without the agent extension (Cloudflare's narrow bridge) these
// throw UnsupportedOperationError naming the transport they need.
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/sdk_internal.hpp"
#include "core/json_util.hpp"
#include "core/shell.hpp"
#include "core/time.hpp"
#include "core/wire.hpp"
#include "core/wire_process.hpp"

namespace sandbox {
namespace wire = core::wire;
using detail::SandboxState;
using nlohmann::json;
using ms = std::chrono::milliseconds;

// ---- statuses -------------------------------------------------------------------------------

std::string to_string(ProcessStatus s) {
    switch (s) {
        case ProcessStatus::Starting:
            return "starting";
        case ProcessStatus::Running:
            return "running";
        case ProcessStatus::Completed:
            return "completed";
        case ProcessStatus::Failed:
            return "failed";
        case ProcessStatus::Killed:
            return "killed";
        case ProcessStatus::Error:
            return "error";
    }
    return "error";
}

ProcessStatus processStatusFromString(std::string_view t) noexcept {
    if (t == "starting") return ProcessStatus::Starting;
    if (t == "running") return ProcessStatus::Running;
    if (t == "completed") return ProcessStatus::Completed;
    if (t == "failed") return ProcessStatus::Failed;
    if (t == "killed") return ProcessStatus::Killed;
    return ProcessStatus::Error;
}

bool isTerminalStatus(ProcessStatus s) noexcept {
    return s == ProcessStatus::Completed || s == ProcessStatus::Failed ||
           s == ProcessStatus::Killed || s == ProcessStatus::Error;
}

namespace {

// The container API, or the typed error that says which transport is needed.
const client::Endpoint& requireAgent(SandboxState& st, const char* method) {
    if (!detail::hasAgent(st))
        throw UnsupportedOperationError(
            "UNSUPPORTED_OPERATION",
            std::string(method) +
                "() needs the container API: the agent transport (SANDBOX_AGENT_URL) or a "
                "bridge with the agent extension (sandboxd, or the embedded default); this "
                "bridge has only the narrow /exec and /file routes",
            0, json{{"method", method}});
    return detail::agentEndpoint(st);
}

// Ids go into URL paths: refuse what could address another route.
void checkProcessId(std::string_view id, const char* op) {
    if (auto problem = wire::processIdProblem(id); !problem.empty())
        throw ValidationFailedError(
            "VALIDATION_FAILED", "Invalid process id '" + std::string(id) + "': " + problem, 400,
            json{{"validationErrors", json::array({{{"field", "processId"},
                                                    {"message", problem},
                                                    {"code", "INVALID_PROCESS_ID"}}})}},
            op);
}

json agentGet(SandboxState& st, const std::string& route, const std::string& op, const char* method,
              std::string_view verb = "GET") {
    const auto& ep = requireAgent(st, method);
    auto r = st.client->call(ep, verb, route, {}, {}, op, verb == "GET");
    json j = core::parseJson(r.body);
    if (j.is_discarded())
        throw SandboxError("INVALID_JSON_RESPONSE", "the sandbox sent a response that is not JSON",
                           r.status, json::object(), op);
    return j;
}

Process fromInfo(const wire::ProcessInfo& p, std::shared_ptr<SandboxState> st) {
    Process out;
    out.id = p.id;
    if (p.pid) out.pid = static_cast<int>(*p.pid);
    out.command = p.command;
    out.status = processStatusFromString(p.status);
    out.startTime = p.startTime;
    out.endTime = p.endTime;
    out.exitCode = p.exitCode;
    out.bind(std::move(st));
    return out;
}

std::optional<LogEvent> parseLogEvent(const std::string& data) {
    json j = json::parse(data, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    std::string type = j.value("type", "");
    LogEvent ev;
    ev.processId = j.value("processId", "");
    ev.timestamp = j.value("timestamp", "");
    if (j.contains("data") && j["data"].is_string()) ev.data = j["data"].get<std::string>();
    if (type == "process_info") {
        ev.type = LogEvent::Type::ProcessInfo;
        ev.status = j.value("status", "");
        ev.command = j.value("command", "");
    } else if (type == "stdout" || type == "stderr") {
        ev.type = type == "stdout" ? LogEvent::Type::Stdout : LogEvent::Type::Stderr;
    } else if (type == "dropped") {
        ev.type = LogEvent::Type::Dropped;
        ev.stream = j.value("stream", "");
        if (j.contains("bytes") && j["bytes"].is_number_integer())
            ev.bytes = j["bytes"].get<std::uint64_t>();
    } else if (type == "exit") {
        ev.type = LogEvent::Type::Exit;
        if (j.contains("exitCode") && j["exitCode"].is_number_integer())
            ev.exitCode = j["exitCode"].get<int>();
    } else {
        return std::nullopt;  // tolerate event types this SDK does not know
    }
    return ev;
}

std::unique_ptr<detail::EventSource> openLogStream(SandboxState& st, const std::string& id,
                                                   const char* method,
                                                   std::optional<ms> idle = std::nullopt) {
    checkProcessId(id, "process.stream");
    const auto& ep = requireAgent(st, method);
    return st.client->stream(ep, "GET", "/api/process/" + id + "/stream", {}, {}, "process.stream",
                             idle);
}

// Remaining time until `deadline` (at least 1 ms), or 0 (no limit) without a deadline.
ms remaining(const std::optional<std::chrono::steady_clock::time_point>& deadline) {
    if (!deadline) return ms(0);
    auto left = std::chrono::duration_cast<ms>(*deadline - std::chrono::steady_clock::now());
    return std::max(left, ms(1));
}

[[noreturn]] void throwReadyTimeout(const Process& p, const std::string& condition, ms timeout) {
    throw ProcessReadyTimeoutError("PROCESS_READY_TIMEOUT",
                                   "Process " + p.id + " did not become ready (" + condition +
                                       ") within " + std::to_string(timeout.count()) + "ms",
                                   408,
                                   json{{"processId", p.id},
                                        {"command", p.command},
                                        {"condition", condition},
                                        {"timeout", timeout.count()}},
                                   "process.wait");
}

[[noreturn]] void throwExitedBeforeReady(const Process& p, const std::string& condition,
                                         std::optional<int> code) {
    throw ProcessExitedBeforeReadyError("PROCESS_EXITED_BEFORE_READY",
                                        "Process " + p.id + " exited before it was ready (" +
                                            condition + "), exit code " +
                                            (code ? std::to_string(*code) : std::string("unknown")),
                                        500,
                                        json{{"processId", p.id},
                                             {"command", p.command},
                                             {"condition", condition},
                                             {"exitCode", code ? json(*code) : json(nullptr)}},
                                        "process.wait");
}

// Reads a log stream until `onEvent` returns true (done) or the process exits. Returns the
// exit event when the process exited first; throws ProcessReadyTimeoutError at the deadline.
template <class F>
std::optional<LogEvent> followLogs(SandboxState& st, const Process& p, const std::string& condition,
                                   std::optional<ms> timeout, F&& onEvent) {
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (timeout) deadline = std::chrono::steady_clock::now() + *timeout;
    auto src = openLogStream(st, p.id, "waitFor", remaining(deadline));
    for (;;) {
        std::optional<LogEvent> ev;
        try {
            if (deadline) src->setIdleTimeout(remaining(deadline));
            auto raw = src->next();
            if (!raw)
                throw StreamLostError("STREAM_LOST", "log stream ended without an exit event", 0,
                                      json{{"processId", p.id}}, "process.stream");
            ev = parseLogEvent(raw->data);
        } catch (const TimeoutError&) {
            throwReadyTimeout(p, condition, *timeout);
        }
        if (!ev) continue;
        if (onEvent(*ev)) return std::nullopt;
        if (ev->type == LogEvent::Type::Exit) return ev;
        if (deadline && std::chrono::steady_clock::now() >= *deadline)
            throwReadyTimeout(p, condition, *timeout);
    }
}

// Splits output into lines per stream and hands each complete line to `match`.
struct LineMatcher {
    std::string partial[2];
    std::function<bool(const std::string&)> match;
    std::optional<std::string> found;
    bool feed(int stream, const std::string& data) {
        std::string& buf = partial[stream];
        buf += data;
        std::size_t start = 0, nl;
        while ((nl = buf.find('\n', start)) != std::string::npos) {
            std::string line = buf.substr(start, nl - start);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            start = nl + 1;
            if (match(line)) {
                found = line;
                return true;
            }
        }
        buf.erase(0, start);
        return false;
    }
    bool flush() {
        for (auto& b : partial)
            if (!b.empty() && match(b)) {
                found = b;
                return true;
            }
        return false;
    }
};

WaitForLogResult waitForLine(const Process& p, SandboxState& st, const std::string& condition,
                             std::optional<ms> timeout,
                             const std::function<bool(const std::string&)>& match) {
    LineMatcher m;
    m.match = match;
    auto exitEv = followLogs(st, p, condition, timeout, [&](const LogEvent& ev) {
        if (ev.type == LogEvent::Type::Stdout) return m.feed(0, ev.data);
        if (ev.type == LogEvent::Type::Stderr) return m.feed(1, ev.data);
        if (ev.type == LogEvent::Type::Exit) return m.flush();  // a last line without newline
        return false;
    });
    if (exitEv) throwExitedBeforeReady(p, condition, exitEv->exitCode);
    return WaitForLogResult{*m.found, {}};
}

SandboxState& stateOf(const std::shared_ptr<SandboxState>& st) {
    if (!st) throw SandboxError("INVALID_STATE", "this Process is not bound to a sandbox", 0);
    return *st;
}

}  // namespace

// ---- LogStream ------------------------------------------------------------------------------

LogStream::LogStream(std::unique_ptr<detail::EventSource> src) : src_(std::move(src)) {}
LogStream::LogStream(LogStream&&) noexcept = default;
LogStream& LogStream::operator=(LogStream&&) noexcept = default;
LogStream::~LogStream() = default;

LogStream::iterator LogStream::begin() {
    return iterator(this);
}

std::optional<LogEvent> LogStream::next() {
    if (done_ || !src_) return std::nullopt;
    for (;;) {
        auto ev = src_->next();
        if (!ev) {
            done_ = true;
            throw StreamLostError("STREAM_LOST", "process log stream ended without an exit event",
                                  0, json::object(), "process.stream");
        }
        auto parsed = parseLogEvent(ev->data);
        if (!parsed) continue;
        if (parsed->type == LogEvent::Type::Exit) done_ = true;
        return parsed;
    }
}

// ---- Sandbox: processes ---------------------------------------------------------------------

Process Sandbox::startProcess(std::string_view command, const ProcessOptions& o) const {
    try {
        const auto& ep = requireAgent(*state_, "startProcess");
        if (o.processId) checkProcessId(*o.processId, "process.start");
        wire::StartProcessRequest req;
        req.command = std::string(command);
        req.sessionId = detail::sessionFor(*state_, session_);
        req.processId = o.processId;
        if (o.timeout) req.timeoutMs = o.timeout->count();
        req.env =
            *req.sessionId == wire::kNoSession ? detail::withSandboxEnv(*state_, o.env) : o.env;
        for (auto it = req.env.begin(); it != req.env.end();)
            it = it->second ? std::next(it) : req.env.erase(it);
        req.cwd = o.cwd;
        req.encoding = o.encoding;
        req.autoCleanup = o.autoCleanup;
        std::string startTime = core::isoTimestampNow();
        auto r = state_->client->call(ep, "POST", "/api/process/start", req.toJson().dump(), {},
                                      "process.start", false);
        auto started = wire::ProcessStartedResponse::fromJson(core::parseJson(r.body));
        Process p;
        p.id = started.processId;
        if (started.pid) p.pid = static_cast<int>(*started.pid);
        p.command = std::string(command);
        p.status = ProcessStatus::Running;
        p.startTime = startTime;
        if (*req.sessionId != wire::kNoSession) p.sessionId = req.sessionId;
        p.bind(state_);
        if (o.onOutput || o.onExit) {
            // The log pump: its own connection, on its own thread, until the process ends.
            auto src = openLogStream(*state_, p.id, "startProcess", ms(0));
            std::thread([src = std::move(src), onOutput = o.onOutput, onExit = o.onExit,
                         onError = o.onError]() mutable {
                try {
                    LogStream stream(std::move(src));
                    for (auto& ev : stream) {
                        if (ev.type == LogEvent::Type::Stdout && onOutput)
                            onOutput("stdout", ev.data);
                        if (ev.type == LogEvent::Type::Stderr && onOutput)
                            onOutput("stderr", ev.data);
                        if (ev.type == LogEvent::Type::Exit && onExit) onExit(ev.exitCode);
                    }
                } catch (const std::exception& e) {
                    if (onError) onError(e);
                }
            }).detach();
        }
        if (o.onStart) o.onStart(p);
        return p;
    } catch (const std::exception& e) {
        if (o.onError) o.onError(e);
        throw;
    }
}

std::vector<Process> Sandbox::listProcesses() const {
    json j = agentGet(*state_, "/api/process/list", "process.list", "listProcesses");
    std::vector<Process> out;
    if (j.contains("processes") && j["processes"].is_array())
        for (const auto& p : j["processes"])
            out.push_back(fromInfo(wire::ProcessInfo::fromJson(p), state_));
    return out;
}

std::optional<Process> Sandbox::getProcess(std::string_view id) const {
    requireAgent(*state_, "getProcess");
    if (!wire::processIdProblem(id).empty()) return std::nullopt;  // no such id can exist
    try {
        json j = agentGet(*state_, "/api/process/" + std::string(id), "process.get", "getProcess");
        if (!j.contains("process")) return std::nullopt;
        return fromInfo(wire::ProcessInfo::fromJson(j["process"]), state_);
    } catch (const ProcessNotFoundError&) {
        return std::nullopt;
    }
}

void Sandbox::killProcess(std::string_view id, std::string_view signal) const {
    requireAgent(*state_, "killProcess");
    checkProcessId(id, "process.kill");
    std::string target = "/api/process/" + std::string(id);
    if (!signal.empty() && signal != "SIGTERM" && signal != "TERM")
        target +=
            "?signal=" + std::string(signal == "SIGKILL" || signal == "KILL" ? "SIGKILL" : signal);
    if (target.find_first_of(" #&\r\n") != std::string::npos)
        throw ValidationFailedError("VALIDATION_FAILED",
                                    "Unsupported signal '" + std::string(signal) + "'", 400);
    agentGet(*state_, target, "process.kill", "killProcess", "DELETE");
}

int Sandbox::killAllProcesses() const {
    json j =
        agentGet(*state_, "/api/process/kill-all", "process.killAll", "killAllProcesses", "DELETE");
    return j.value("cleanedCount", 0);
}

ProcessLogs Sandbox::getProcessLogs(std::string_view id) const {
    requireAgent(*state_, "getProcessLogs");
    checkProcessId(id, "process.logs");
    auto r = wire::ProcessLogsResponse::fromJson(agentGet(
        *state_, "/api/process/" + std::string(id) + "/logs", "process.logs", "getProcessLogs"));
    return ProcessLogs{r.processId, std::move(r.stdoutText), std::move(r.stderrText),
                       r.stdoutDroppedBytes, r.stderrDroppedBytes};
}

LogStream Sandbox::streamProcessLogs(std::string_view id) const {
    return LogStream(openLogStream(*state_, std::string(id), "streamProcessLogs"));
}

// ---- Sandbox: environment -------------------------------------------------------------------

namespace detail {
void applyEnvInSession(SandboxState& st, const std::string& sessionId, const EnvVars& envVars) {
    for (const auto& [k, v] : envVars)
        if (!core::isValidEnvName(k))
            throw ValidationFailedError(
                "VALIDATION_FAILED", "Invalid environment variable name: " + k, 400,
                json{{"validationErrors", json::array({{{"field", "envVars"},
                                                        {"message", "invalid name '" + k + "'"},
                                                        {"code", "INVALID_ENV_NAME"}}})}},
                "env.set");
    // One command for all of them: export K='v' ...; unset X ...
    std::string exports, unsets;
    for (const auto& [k, v] : envVars) {
        if (v)
            exports += " " + k + "=" + core::shellQuote(*v);
        else
            unsets += " " + k;
    }
    std::string script;
    if (!exports.empty()) script += "export" + exports;
    if (!unsets.empty()) script += (script.empty() ? "unset" : "; unset") + unsets;
    if (script.empty()) return;
    wire::ExecuteRequest req;
    req.command = script;
    req.sessionId = sessionId;
    req.origin = "internal";
    auto resp =
        wire::ExecuteResponse::fromJson(agentCall(st, "/api/execute", req.toJson(), "env.set"));
    if (resp.exitCode != 0)
        throw SandboxError("COMMAND_EXECUTION_ERROR",
                           "Failed to set environment variables: " + resp.stderrText, 500,
                           json{{"command", script}, {"stderr", resp.stderrText}}, "env.set");
}
}  // namespace detail

void Sandbox::setEnvVars(const EnvVars& envVars) const {
    for (const auto& [k, v] : envVars)
        if (!core::isValidEnvName(k))
            throw ValidationFailedError(
                "VALIDATION_FAILED", "Invalid environment variable name: " + k, 400,
                json{{"validationErrors", json::array({{{"field", "envVars"},
                                                        {"message", "invalid name '" + k + "'"},
                                                        {"code", "INVALID_ENV_NAME"}}})}},
                "env.set");
    auto applyIn = [&](const std::string& sid) {
        detail::applyEnvInSession(*state_, sid, envVars);
    };

    if (session_) {
        // Session level: that shell only (it needs the container API to keep state).
        if (!detail::hasAgent(*state_))
            throw UnsupportedOperationError(
                "UNSUPPORTED_OPERATION",
                "ExecutionSession::setEnvVars() needs the container API: the agent transport "
                "(SANDBOX_AGENT_URL) or a bridge with the agent extension (sandboxd); this "
                "bridge's /exec keeps no shell state between commands",
                0, json{{"method", "setEnvVars"}});
        applyIn(*session_);
        return;
    }
    // Sandbox level: remembered for sessions created later and session-less calls ...
    bool defaultReady;
    {
        std::lock_guard lock(state_->m);
        for (const auto& [k, v] : envVars) {
            if (v)
                state_->envVars[k] = v;
            else
                state_->envVars.erase(k);
        }
        defaultReady = state_->defaultSessionReady;
    }
    // ... and applied now to the default session when it already exists.
    if (defaultReady && state_->options.enableDefaultSession && detail::hasAgent(*state_))
        applyIn(state_->defaultSessionId());
}

// ---- Process --------------------------------------------------------------------------------

ProcessStatus Process::getStatus() const {
    auto& st = stateOf(state_);
    requireAgent(st, "getStatus");
    try {
        json j = agentGet(st, "/api/process/" + id, "process.get", "getStatus");
        return processStatusFromString(j.value("process", json::object()).value("status", ""));
    } catch (const ProcessNotFoundError&) {
        return ProcessStatus::Error;
    }
}

ProcessLogs Process::getLogs() const {
    auto& st = stateOf(state_);
    auto r = wire::ProcessLogsResponse::fromJson(
        agentGet(st, "/api/process/" + id + "/logs", "process.logs", "getLogs"));
    return ProcessLogs{r.processId, std::move(r.stdoutText), std::move(r.stderrText),
                       r.stdoutDroppedBytes, r.stderrDroppedBytes};
}

void Process::kill(std::string_view signal) const {
    auto& st = stateOf(state_);
    std::string target = "/api/process/" + id;
    if (signal == "SIGKILL" || signal == "KILL")
        target += "?signal=SIGKILL";
    else if (!signal.empty() && signal != "SIGTERM" && signal != "TERM")
        throw ValidationFailedError(
            "VALIDATION_FAILED",
            "Unsupported signal '" + std::string(signal) + "': use SIGTERM or SIGKILL", 400);
    agentGet(st, target, "process.kill", "kill", "DELETE");
}

WaitForLogResult Process::waitForLog(std::string_view pattern, std::optional<ms> timeout) const {
    std::string needle(pattern);
    return waitForLine(
        *this, stateOf(state_), "log \"" + needle + "\"", timeout,
        [&](const std::string& line) { return line.find(needle) != std::string::npos; });
}

WaitForLogResult Process::waitForLog(const std::regex& pattern, std::optional<ms> timeout) const {
    std::vector<std::string> groups;
    auto r =
        waitForLine(*this, stateOf(state_), "log pattern", timeout, [&](const std::string& line) {
            std::smatch m;
            if (!std::regex_search(line, m, pattern)) return false;
            groups.clear();
            for (const auto& g : m) groups.push_back(g.str());
            return true;
        });
    r.match = std::move(groups);
    return r;
}

void Process::waitForPort(int port, const WaitForPortOptions& o) const {
    auto& st = stateOf(state_);
    if (port < 1 || port > 65535)
        throw InvalidPortError("INVALID_PORT_NUMBER",
                               "Invalid port " + std::to_string(port) + ": use 1-65535", 400,
                               json{{"port", port}}, "port.watch");
    const auto& ep = requireAgent(st, "waitForPort");
    wire::PortWatchRequest req;
    req.port = port;
    req.mode = o.mode == PortCheckMode::Tcp ? "tcp" : "http";
    req.path = o.path;
    req.statusMin = o.statusMin;
    req.statusMax = o.statusMax;
    req.processId = id;
    req.intervalMs = o.interval.count();
    std::string condition = "port " + std::to_string(port) +
                            (o.mode == PortCheckMode::Tcp ? " (tcp)" : " (http " + o.path + ")");
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (o.timeout) deadline = std::chrono::steady_clock::now() + *o.timeout;
    auto src = st.client->stream(ep, "POST", "/api/port-watch", req.toJson().dump(), {},
                                 "port.watch", remaining(deadline));
    for (;;) {
        std::optional<SseEvent> ev;
        try {
            if (deadline) src->setIdleTimeout(remaining(deadline));
            ev = src->next();
        } catch (const TimeoutError&) {
            throwReadyTimeout(*this, condition, *o.timeout);
        }
        if (!ev)
            throw StreamLostError("STREAM_LOST", "Port watch ended unexpectedly", 0,
                                  json{{"port", port}}, "port.watch");
        json j = json::parse(ev->data, nullptr, false);
        if (!j.is_object()) continue;
        std::string type = j.value("type", "");
        if (type == "ready") return;
        if (type == "process_exited") {
            std::optional<int> code;
            if (j.contains("exitCode") && j["exitCode"].is_number_integer())
                code = j["exitCode"].get<int>();
            throwExitedBeforeReady(*this, condition, code);
        }
        if (type == "error") {
            std::string msg = j.value("error", "unknown error");
            if (msg == "Process not found")
                throw ProcessNotFoundError("PROCESS_NOT_FOUND", "Process not found: " + id, 404,
                                           json{{"processId", id}}, "port.watch");
            throw PortError("PORT_OPERATION_ERROR", "Port watch failed: " + msg, 500,
                            json{{"port", port}}, "port.watch");
        }
        if (deadline && std::chrono::steady_clock::now() >= *deadline)
            throwReadyTimeout(*this, condition, *o.timeout);
    }
}

WaitForExitResult Process::waitForExit(std::optional<ms> timeout) const {
    auto exitEv = followLogs(stateOf(state_), *this, "process exit", timeout,
                             [](const LogEvent&) { return false; });
    return WaitForExitResult{exitEv && exitEv->exitCode ? *exitEv->exitCode : -1};
}

}  // namespace sandbox
