#pragma once
// Commands: run in the foreground with their output collected, started in the background as
// processes of the process table, or started for a stream; and background processes inspected
// and killed. The services behind /api/execute, /api/execute/stream and /api/process/*
// (docs/agent.md, docs/processes.md), in the request and answer types of core/wire; each
// checks its request (command, environment, session, process id) and throws core::ApiError.
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "agent/agent.hpp"
#include "core/wire.hpp"
#include "core/wire_process.hpp"

namespace sandbox::agent {

/// A command to run, with the execution mode resolved.
struct ExecTarget {
    bool sessionless = false;
    std::string sessionId;         ///< effective id (kNoSession when sessionless)
    bool implicitDefault = false;  ///< no id was given and "default" was used
};

/// Which session a command runs in: the body's `sessionId` when given and non-empty, else the
/// context session id (from the request's headers or query), else "default" (implicitDefault);
/// kNoSession means none. Throws VALIDATION_FAILED (INVALID_SESSION_ID) for a blank id.
ExecTarget resolveTarget(const std::optional<std::string>& bodyId,
                         const std::optional<std::string>& contextSessionId);

/// Runs a command in the foreground and collects its output: sessionless in a bash of its own
/// (its timeout kills it: exit code 124), or in its session after the session's other
/// foreground work. Throws VALIDATION_FAILED, COMMAND_EXECUTION_ERROR (a session command's
/// timeout), SESSION_TERMINATED or SESSION_DESTROYED (the session's shell went away).
awaitable<core::wire::ExecuteResponse> executeCommand(
    Agent& agent, const core::wire::ExecuteRequest& request,
    const std::optional<std::string>& contextSessionId);

/// `background: true`: starts the command as a process of the process table (tagged, so a
/// kill takes its whole tree; its output kept; its timeout armed). Throws VALIDATION_FAILED,
/// INVALID_COMMAND (empty) or STREAM_START_ERROR.
awaitable<core::wire::ProcessStartedResponse> executeInBackground(
    Agent& agent, const core::wire::ExecuteRequest& request,
    const std::optional<std::string>& contextSessionId);

/// A command started for a stream: its output is pulled from `run`, and appended to `record`
/// (in the process table) by the reader; a session command keeps its session (`sessionLock`)
/// until the stream lets go of it.
struct ExecStream {
    std::shared_ptr<RunningCommand> run;
    std::shared_ptr<ProcessRecord> record;
    std::optional<LockGuard> sessionLock;
    bool sessionless = false;  ///< output is raw bytes (else lines from the session's shell)
};

/// Starts a command for a stream. Throws INVALID_COMMAND (empty), VALIDATION_FAILED or
/// STREAM_START_ERROR.
awaitable<ExecStream> startExecStream(Agent& agent, const core::wire::ExecuteRequest& request,
                                      const std::optional<std::string>& contextSessionId);

/// Starts a background process (an id of the caller's, or a new one). Throws INVALID_COMMAND,
/// VALIDATION_FAILED (env, processId, sessionId), PROCESS_ALREADY_EXISTS (the id names a
/// running process) or STREAM_START_ERROR.
awaitable<core::wire::ProcessStartedResponse> startProcess(
    Agent& agent, const core::wire::StartProcessRequest& request);

/// The process `id`. Throws PROCESS_NOT_FOUND.
std::shared_ptr<ProcessRecord> findProcess(Agent& agent, const std::string& id);

/// Kills process `id` with its whole tree: SIGTERM, then SIGKILL for what is left after the
/// grace period; SIGKILL at once when `signal` says so (SIGKILL, KILL or 9; SIGTERM, TERM or 15
/// is the default). Throws PROCESS_NOT_FOUND, VALIDATION_FAILED (INVALID_SIGNAL) or
/// COMMAND_NOT_FOUND (it ended, or a kill is under way).
awaitable<void> killProcess(Agent& agent, const std::string& id,
                            const std::optional<std::string>& signal);

/// Kills every running process at once (one grace period for all); returns how many.
awaitable<std::size_t> killAllProcesses(Agent& agent);

/// The kept output of process `id`. Throws PROCESS_NOT_FOUND.
core::wire::ProcessLogsResponse processLogs(Agent& agent, const std::string& id);

}  // namespace sandbox::agent
