// The SDK's background processes and port readiness: SandboxOperations and Process methods over
// the container API's /api/process/* and /api/port-watch. Over Cloudflare's bridge these throw
// UnsupportedOperationError naming what they need (Connection::containerApi).
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/client_impl.hpp"
#include "client/container_connection.hpp"
#include "client/error_mapping.hpp"
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

detail::ContainerApi& requireAgent(SandboxState& st, const char* method) {
    return st.conn().containerApi((std::string(method) + "()").c_str());
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
    return requireAgent(st, method).get(route, op, verb);
}

Process fromInfo(const wire::ProcessInfo& p, const std::shared_ptr<SandboxState>& st) {
    Process out = detail::Access::process(st);
    out.id = p.id;
    if (p.pid) out.pid = static_cast<int>(*p.pid);
    out.command = p.command;
    out.status = processStatusFromString(p.status);
    out.startTime = p.startTime;
    out.endTime = p.endTime;
    out.exitCode = p.exitCode;
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
        ev.status = processStatusFromString(j.value("status", ""));
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
    return requireAgent(st, method)
        .stream("GET", "/api/process/" + id + "/stream", {}, "process.stream", idle);
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

namespace detail {
Process Access::process(const std::shared_ptr<SandboxState>& st) {
    Process p;
    p.state_ = st;
    return p;
}
LogStream Access::logStream(std::unique_ptr<EventSource> src) {
    return LogStream(std::move(src));
}
}  // namespace detail

LogStream::LogStream(std::unique_ptr<detail::EventSource> src) : src_(std::move(src)) {}
LogStream::LogStream(LogStream&&) noexcept = default;
LogStream& LogStream::operator=(LogStream&&) noexcept = default;
LogStream::~LogStream() = default;

LogStream::iterator LogStream::begin() {
    return iterator(this);
}

std::optional<LogEvent> LogStream::next() try {
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
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "next");
}

// ---- Sandbox: processes ---------------------------------------------------------------------

Process SandboxOperations::startProcess(std::string_view command, const ProcessOptions& o) const
    try {
    try {
        auto& api = requireAgent(*state_, "startProcess");
        if (o.processId) checkProcessId(*o.processId, "process.start");
        wire::StartProcessRequest req;
        req.command = std::string(command);
        req.sessionId = api.sessionFor(session_);
        req.processId = o.processId;
        if (o.timeout) req.timeoutMs = o.timeout->count();
        req.env = *req.sessionId == wire::kNoSession ? state_->info->withSandboxEnv(o.env) : o.env;
        for (auto it = req.env.begin(); it != req.env.end();)
            it = it->second ? std::next(it) : req.env.erase(it);
        req.cwd = o.cwd;
        req.encoding = o.encoding;
        req.autoCleanup = o.autoCleanup;
        std::string startTime = core::isoTimestampNow();
        auto r = api.call("POST", "/api/process/start",
                          detail::jsonBody(req.toJson(), "process.start"), "process.start", false);
        auto started = wire::ProcessStartedResponse::fromJson(core::parseJson(r.body));
        Process p = detail::Access::process(state_);
        p.id = started.processId;
        if (started.pid) p.pid = static_cast<int>(*started.pid);
        p.command = std::string(command);
        p.status = ProcessStatus::Running;
        p.startTime = startTime;
        if (*req.sessionId != wire::kNoSession) p.sessionId = req.sessionId;
        if (o.onOutput || o.onExit) {
            // The log pump: its own connection, on a thread the Sandbox owns, until the process
            // ends or the Sandbox's last handle goes.
            std::shared_ptr<detail::EventSource> src =
                openLogStream(*state_, p.id, "startProcess", ms(0));
            state_->callbacks.start(
                [src, onOutput = o.onOutput, onExit = o.onExit,
                 onError = o.onError](const std::atomic<bool>& stopping) {
                    try {
                        for (;;) {
                            auto raw = src->next();
                            if (stopping) return;
                            if (!raw)
                                throw StreamLostError("STREAM_LOST",
                                                      "process log stream ended without an exit "
                                                      "event",
                                                      0, json::object(), "process.stream");
                            auto ev = parseLogEvent(raw->data);
                            if (!ev) continue;
                            if (ev->type == LogEvent::Type::Stdout && onOutput)
                                onOutput("stdout", ev->data);
                            if (ev->type == LogEvent::Type::Stderr && onOutput)
                                onOutput("stderr", ev->data);
                            if (ev->type == LogEvent::Type::Exit) {
                                if (onExit) onExit(ev->exitCode);
                                return;
                            }
                        }
                    } catch (const std::exception& e) {
                        if (onError && !stopping) onError(e);
                    }
                },
                [src] { src->interrupt(); });
        }
        if (o.onStart) o.onStart(p);
        return p;
    } catch (const std::exception& e) {
        if (o.onError) o.onError(e);
        throw;
    }
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "startProcess");
}

std::vector<Process> SandboxOperations::listProcesses() const try {
    json j = agentGet(*state_, "/api/process/list", "process.list", "listProcesses");
    std::vector<Process> out;
    if (j.contains("processes") && j["processes"].is_array())
        for (const auto& p : j["processes"])
            out.push_back(fromInfo(wire::ProcessInfo::fromJson(p), state_));
    return out;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "listProcesses");
}

std::optional<Process> SandboxOperations::getProcess(std::string_view id) const try {
    requireAgent(*state_, "getProcess");
    if (!wire::processIdProblem(id).empty()) return std::nullopt;  // no such id can exist
    try {
        json j = agentGet(*state_, "/api/process/" + std::string(id), "process.get", "getProcess");
        if (!j.contains("process")) return std::nullopt;
        return fromInfo(wire::ProcessInfo::fromJson(j["process"]), state_);
    } catch (const ProcessNotFoundError&) {
        return std::nullopt;
    }
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "getProcess");
}

void SandboxOperations::killProcess(std::string_view id, std::string_view signal) const try {
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
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "killProcess");
}

int SandboxOperations::killAllProcesses() const try {
    json j =
        agentGet(*state_, "/api/process/kill-all", "process.killAll", "killAllProcesses", "DELETE");
    return j.value("cleanedCount", 0);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "killAllProcesses");
}

ProcessLogs SandboxOperations::getProcessLogs(std::string_view id) const try {
    requireAgent(*state_, "getProcessLogs");
    checkProcessId(id, "process.logs");
    auto r = wire::ProcessLogsResponse::fromJson(agentGet(
        *state_, "/api/process/" + std::string(id) + "/logs", "process.logs", "getProcessLogs"));
    return ProcessLogs{r.processId, std::move(r.stdoutText), std::move(r.stderrText),
                       r.stdoutDroppedBytes, r.stderrDroppedBytes};
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "getProcessLogs");
}

LogStream SandboxOperations::streamProcessLogs(std::string_view id) const try {
    return detail::Access::logStream(openLogStream(*state_, std::string(id), "streamProcessLogs"));
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "streamProcessLogs");
}

// ---- Process --------------------------------------------------------------------------------

ProcessStatus Process::getStatus() const try {
    auto& st = stateOf(state_);
    requireAgent(st, "getStatus");
    try {
        json j = agentGet(st, "/api/process/" + id, "process.get", "getStatus");
        return processStatusFromString(j.value("process", json::object()).value("status", ""));
    } catch (const ProcessNotFoundError&) {
        return ProcessStatus::Error;
    }
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "getStatus");
}

ProcessLogs Process::getLogs() const try {
    auto& st = stateOf(state_);
    auto r = wire::ProcessLogsResponse::fromJson(
        agentGet(st, "/api/process/" + id + "/logs", "process.logs", "getLogs"));
    return ProcessLogs{r.processId, std::move(r.stdoutText), std::move(r.stderrText),
                       r.stdoutDroppedBytes, r.stderrDroppedBytes};
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "getLogs");
}

void Process::kill(std::string_view signal) const try {
    auto& st = stateOf(state_);
    std::string target = "/api/process/" + id;
    if (signal == "SIGKILL" || signal == "KILL")
        target += "?signal=SIGKILL";
    else if (!signal.empty() && signal != "SIGTERM" && signal != "TERM")
        throw ValidationFailedError(
            "VALIDATION_FAILED",
            "Unsupported signal '" + std::string(signal) + "': use SIGTERM or SIGKILL", 400);
    agentGet(st, target, "process.kill", "kill", "DELETE");
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "kill");
}

WaitForLogResult Process::waitForLog(std::string_view pattern, std::optional<ms> timeout) const
    try {
    std::string needle(pattern);
    return waitForLine(
        *this, stateOf(state_), "log \"" + needle + "\"", timeout,
        [&](const std::string& line) { return line.find(needle) != std::string::npos; });
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "waitForLog");
}

WaitForLogResult Process::waitForLog(const std::regex& pattern, std::optional<ms> timeout) const
    try {
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
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "waitForLog");
}

void Process::waitForPort(int port, const WaitForPortOptions& o) const try {
    auto& st = stateOf(state_);
    if (port < 1 || port > 65535)
        throw InvalidPortError("INVALID_PORT_NUMBER",
                               "Invalid port " + std::to_string(port) + ": use 1-65535", 400,
                               json{{"port", port}}, "port.watch");
    auto& api = requireAgent(st, "waitForPort");
    wire::PortWatchRequest req;
    req.port = port;
    req.mode = o.mode == PortCheckMode::Tcp ? "tcp" : "http";
    req.path = o.path;
    req.statusMin = o.status.min;
    req.statusMax = o.status.max;
    req.processId = id;
    req.intervalMs = o.interval.count();
    std::string condition = "port " + std::to_string(port) +
                            (o.mode == PortCheckMode::Tcp ? " (tcp)" : " (http " + o.path + ")");
    std::optional<std::chrono::steady_clock::time_point> deadline;
    if (o.timeout) deadline = std::chrono::steady_clock::now() + *o.timeout;
    auto src = api.stream("POST", "/api/port-watch", detail::jsonBody(req.toJson(), "port.watch"),
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
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "waitForPort");
}

WaitForExitResult Process::waitForExit(std::optional<ms> timeout) const try {
    auto exitEv = followLogs(stateOf(state_), *this, "process exit", timeout,
                             [](const LogEvent&) { return false; });
    return WaitForExitResult{exitEv && exitEv->exitCode ? *exitEv->exitCode : -1};
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "waitForExit");
}

}  // namespace sandbox
