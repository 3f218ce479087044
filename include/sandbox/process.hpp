#pragma once
/// @file
/// Background processes: startProcess() returns a Process with readiness helpers
/// (waitForLog, waitForPort, waitForExit), and the types of the process API. Mirrors the
/// TypeScript SDK's `Process`, `ProcessOptions`, `LogEvent` and `WaitForPortOptions`.
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/pull_iterator.hpp"
#include "sandbox/types.hpp"

namespace sandbox {

namespace detail {
struct SandboxState;
class EventSource;
struct Access;
}  // namespace detail

/// Where a process is in its life. Terminal: Completed, Failed, Killed, Error.
enum class ProcessStatus {
    Starting,   ///< declared by the TypeScript API, never reported
    Running,    ///< still running
    Completed,  ///< exited with code 0
    Failed,     ///< exited with another code (124 after its timeout)
    Killed,     ///< killed (exit code 143 after SIGTERM, 137 after SIGKILL)
    Error,      ///< could not run, or its record is gone
};

/// "running", "completed", ...: the wire spelling.
std::string to_string(ProcessStatus status);
/// The status for a wire spelling; unknown text gives ProcessStatus::Error.
ProcessStatus processStatusFromString(std::string_view text) noexcept;
/// True for Completed, Failed, Killed and Error.
bool isTerminalStatus(ProcessStatus status) noexcept;

/// Output of a process so far (getProcessLogs / Process::getLogs).
struct ProcessLogs {
    std::string processId;
    std::string stdoutText;  ///< what the agent still keeps (its ring buffer holds the last 1 MiB)
    std::string stderrText;
    std::uint64_t stdoutDroppedBytes = 0;  ///< older output no longer kept
    std::uint64_t stderrDroppedBytes = 0;
};

/// One event of streamProcessLogs().
struct LogEvent {
    enum class Type {
        ProcessInfo,  ///< first event: the process as it is when the stream starts
        Stdout,       ///< output chunk
        Stderr,       ///< output chunk
        Dropped,      ///< output the ring buffer dropped before this reader got it
        Exit,         ///< the process ended (last event)
    } type = Type::ProcessInfo;
    std::string processId;
    std::string data;  ///< output (Stdout/Stderr), "Process <status> ..." (Exit)
    ProcessStatus status = ProcessStatus::Running;  ///< ProcessInfo: the status then
    std::string command;                            ///< ProcessInfo
    std::optional<int> exitCode;  ///< Exit (absent when the process ended in status error)
    std::string stream;           ///< Dropped: "stdout" or "stderr"
    std::uint64_t bytes = 0;      ///< Dropped: how many bytes
    std::string timestamp;
};

/// The event as the container API's process log stream sends it (one line of JSON).
std::string to_string(const LogEvent& event);
/// The same as a JSON object (`nlohmann::json j = event;`).
void to_json(nlohmann::json& j, const LogEvent& event);

/// The events of a process's output, pulled one by one: replay of what is buffered, then live
/// output, then Exit. `for (auto& ev : sb.streamProcessLogs(id))`. Destroying it detaches (the
/// process keeps running). A stream that breaks before Exit throws StreamLostError.
class LogStream {
  public:
    /// Input iterator over the items (see PullIterator).
    using iterator = PullIterator<LogStream, LogEvent>;
    LogStream(LogStream&&) noexcept;
    LogStream& operator=(LogStream&&) noexcept;
    ~LogStream();
    /// The next event, or nullopt after Exit.
    std::optional<LogEvent> next();
    iterator begin();
    std::default_sentinel_t end() { return {}; }

  private:
    friend struct detail::Access;
    explicit LogStream(std::unique_ptr<detail::EventSource> src);
    std::unique_ptr<detail::EventSource> src_;
    bool done_ = false;
};

/// Result of Process::waitForLog().
struct WaitForLogResult {
    std::string line;                ///< the whole matching line (without its newline)
    std::vector<std::string> match;  ///< regex form: the match and its groups; else empty
};

/// Result of Process::waitForExit().
struct WaitForExitResult {
    int exitCode = 0;
};

/// How waitForPort() decides that a port is ready.
enum class PortCheckMode {
    Http,  ///< an HTTP GET of `path` answers with a status in `status`
    Tcp,   ///< a TCP connection is accepted
};

/// The HTTP statuses waitForPort() counts as ready, as the TypeScript `status` option: one
/// status (`.status = 200`) or an inclusive range (`.status = {200, 299}`).
struct StatusRange {
    int min = 200;  ///< lowest status counted as ready
    int max = 399;  ///< highest status counted as ready
    constexpr StatusRange() = default;
    /// Exactly this status (implicit, so that `.status = 200` reads as in TypeScript).
    constexpr StatusRange(int status) : min(status), max(status) {}  // NOLINT
    constexpr StatusRange(int lowest, int highest) : min(lowest), max(highest) {}
};

/// Options of Process::waitForPort(), in the TypeScript order: mode, path, status, timeout,
/// interval.
struct WaitForPortOptions {
    PortCheckMode mode = PortCheckMode::Http;
    std::string path = "/";                            ///< Http only
    StatusRange status;                                ///< Http only: 200-399 unless set
    std::optional<std::chrono::milliseconds> timeout;  ///< none: wait as long as it takes
    std::chrono::milliseconds interval{500};           ///< poll interval inside the sandbox
};

/// A background process. A value snapshot (status and exitCode as when it was fetched) plus
/// methods that ask the sandbox again. Cheap to copy; safe to use from several threads.
class Process {
  public:
    std::string id;  ///< process id (the chosen processId, or "proc_...")
    std::optional<int> pid;
    std::string command;
    ProcessStatus status = ProcessStatus::Running;  ///< as fetched
    std::string startTime;                          ///< ISO-8601
    std::optional<std::string> endTime;             ///< ISO-8601, when finished
    std::optional<int> exitCode;                    ///< when finished
    std::optional<std::string> sessionId;           ///< annotation: the session it started in

    /// Asks again; ProcessStatus::Error when the sandbox no longer knows the process.
    ProcessStatus getStatus() const;
    /// The output so far.
    ProcessLogs getLogs() const;
    /// Kills the process and every descendant. `signal`: "SIGTERM" (default: TERM, then KILL
    /// for what is left after a grace period) or "SIGKILL" (at once).
    void kill(std::string_view signal = "SIGTERM") const;
    /// Waits for a line of output (stdout or stderr) containing `pattern`; looks at the output
    /// already produced first. Throws ProcessReadyTimeoutError after `timeout`,
    /// ProcessExitedBeforeReadyError when the process ends without such a line.
    WaitForLogResult waitForLog(std::string_view pattern,
                                std::optional<std::chrono::milliseconds> timeout = {}) const;
    /// The same with a regular expression searched in each line.
    WaitForLogResult waitForLog(const std::regex& pattern,
                                std::optional<std::chrono::milliseconds> timeout = {}) const;
    /// Waits until `port` inside the sandbox is ready (polled by the sandbox itself). Fails
    /// fast with ProcessExitedBeforeReadyError when this process ends first;
    /// ProcessReadyTimeoutError after options.timeout.
    void waitForPort(int port, const WaitForPortOptions& options = {}) const;
    /// Waits for the process to end. ProcessReadyTimeoutError after `timeout`.
    WaitForExitResult waitForExit(std::optional<std::chrono::milliseconds> timeout = {}) const;

  private:
    friend struct detail::Access;
    std::shared_ptr<detail::SandboxState> state_;
};

/// Options of startProcess().
struct ProcessOptions {
    /// The process id (1-128 of [A-Za-z0-9._:@+=~-]); default "proc_<ms>_<random>". Starting
    /// with the id of a process that still runs fails with PROCESS_ALREADY_EXISTS (409).
    std::optional<std::string> processId;
    std::optional<std::string> cwd;                    ///< default: the session's directory
    EnvVars env;                                       ///< on top of the session's variables
    std::optional<std::chrono::milliseconds> timeout;  ///< kill it (exit code 124) after this
    std::optional<std::string> encoding;               ///< accepted for compatibility; ignored
    std::optional<bool> autoCleanup;                   ///< accepted for compatibility; ignored
    /// Called once the process started.
    std::function<void(const Process&)> onStart;
    /// Called with ("stdout"|"stderr", chunk) as output arrives (on a background thread).
    std::function<void(const std::string& stream, const std::string& data)> onOutput;
    /// Called with the exit code when the process ends (on a background thread).
    std::function<void(std::optional<int> exitCode)> onExit;
    /// Called when the start fails (before the error is thrown) or the output stream breaks.
    std::function<void(const std::exception&)> onError;
};

}  // namespace sandbox
