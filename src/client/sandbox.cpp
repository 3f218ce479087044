// The public Sandbox / ExecutionSession methods for commands, files, sessions, variables and the
// sandbox's lifecycle: each validates its arguments, calls the sandbox's connection and returns
// what it got (client/connection.hpp). Processes: processes.cpp; watches and git: watch_git.cpp;
// the terminal: pty.cpp.
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <random>

#include "client/client_impl.hpp"
#include "client/error_mapping.hpp"
#include "core/base64.hpp"
#include "core/shell.hpp"
#include "core/time.hpp"
#include "core/wire.hpp"

namespace sandbox {

using detail::checkPath;
using nlohmann::json;

namespace {

void checkEnvNames(const EnvVars& env) {
    for (const auto& [k, v] : env)
        if (!core::isValidEnvName(k))
            throw ValidationFailedError(
                "VALIDATION_FAILED", "Invalid environment variable name: " + k, 400,
                json{{"validationErrors", json::array({{{"field", "envVars"},
                                                        {"message", "invalid name '" + k + "'"},
                                                        {"code", "INVALID_ENV_NAME"}}})}},
                "env.set");
}

// "session-" and 32 random hex digits: ids made at the same moment from many threads (or many
// processes) do not collide.
std::string newSessionId() {
    thread_local std::mt19937_64 rng{[] {
        std::random_device rd;
        std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
        return std::mt19937_64(seq);
    }()};
    char buf[48];
    std::snprintf(buf, sizeof buf, "session-%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    return buf;
}

// What a transport reports when it stopped a command at its timeout: a session's
// COMMAND_EXECUTION_ERROR "... Command timeout after Nms", or (session-less, a bridge, a stream)
// exit code 124 with "Command timed out after Nms" ending stderr. exec() turns both into one
// CommandTimeoutError. Exit 124 alone is not enough (a command may exit 124 by itself): the
// line must be there and the time must have run out.
// Where the last line of `text` begins; `text` comes back without its trailing newlines.
std::size_t lastLineStart(std::string_view& text) {
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    auto nl = text.rfind('\n');
    return nl == std::string_view::npos ? 0 : nl + 1;
}

bool stoppedAtTimeout(const ExecResult& r, std::chrono::milliseconds timeout,
                      std::chrono::steady_clock::duration elapsed) {
    if (r.exitCode != 124 || elapsed < timeout) return false;
    std::string_view err = r.stderrText;
    return err.substr(lastLineStart(err)).starts_with("Command timed out after ");
}

[[noreturn]] void throwTimeout(std::string_view command, std::chrono::milliseconds timeout,
                               const ExecResult* partial, std::string message = {}) {
    json ctx{{"command", std::string(command)}, {"timeoutMs", timeout.count()}};
    if (partial) {
        ctx["stdout"] = partial->stdoutText;
        // The transport's own timeout line is the error's message, not the command's output.
        std::string_view err = partial->stderrText;
        ctx["stderr"] = std::string(err.substr(0, lastLineStart(err)));
    }
    if (message.empty())
        message = "Failed to execute command '" + std::string(command) +
                  "': Command timeout after " + std::to_string(timeout.count()) + "ms";
    throw CommandTimeoutError("COMMAND_EXECUTION_ERROR", message, 500, std::move(ctx),
                              "command.execute");
}

}  // namespace

// ---- commands -------------------------------------------------------------------------------

ExecResult SandboxOperations::exec(std::string_view command, const ExecOptions& o) const try {
    auto start = std::chrono::steady_clock::now();
    std::string ts = core::isoTimestampNow();
    try {
        ExecResult r;
        if (o.stream && o.onOutput) {
            // Streamed to the caller as it happens; the result is what was streamed.
            r.command = std::string(command);
            bool terminal = false;
            for (auto& ev : execStream(command, o)) {
                if (ev.type == ExecEvent::Type::Stdout || ev.type == ExecEvent::Type::Stderr) {
                    bool out = ev.type == ExecEvent::Type::Stdout;
                    (out ? r.stdoutText : r.stderrText) += ev.data;
                    o.onOutput(out ? "stdout" : "stderr", ev.data);
                } else if (ev.type == ExecEvent::Type::Complete) {
                    r.exitCode = ev.exitCode.value_or(0);
                    terminal = true;
                } else if (ev.type == ExecEvent::Type::Error) {
                    throw CommandError("COMMAND_EXECUTION_ERROR", ev.data, 500,
                                       json{{"command", std::string(command)}}, "command.execute");
                }
            }
            if (!terminal)
                throw StreamLostError("STREAM_LOST", "Stream ended without completion event", 0);
            r.sessionId = session_ ? session_ : state_->conn().defaultSession();
        } else {
            try {
                r = state_->conn().exec(command, o, session_);
            } catch (const CommandError& e) {
                // A session reports its timeout as an error without the output so far.
                if (o.timeout && e.code() == "COMMAND_EXECUTION_ERROR" &&
                    e.contextString("stderr").starts_with("Command timeout after "))
                    throwTimeout(command, *o.timeout, nullptr, e.what());
                throw;
            }
        }
        if (o.timeout && stoppedAtTimeout(r, *o.timeout, std::chrono::steady_clock::now() - start))
            throwTimeout(command, *o.timeout, &r);
        r.success = r.exitCode == 0;
        r.timestamp = ts;
        r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
        if (o.onComplete) o.onComplete(r);
        return r;
    } catch (const std::exception& e) {
        if (o.onError) o.onError(e);
        throw;
    }
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "exec");
}

ExecStream SandboxOperations::execStream(std::string_view command, const ExecOptions& o) const try {
    return ExecStream(state_->conn().execStream(command, o, session_), std::string(command));
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "execStream");
}

// ---- files ----------------------------------------------------------------------------------

WriteFileResult SandboxOperations::writeFile(std::string_view path, std::string_view content,
                                             const WriteFileOptions& o) const try {
    checkPath(path, "file.write");
    return state_->conn().writeFile(path, content, o, session_);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "writeFile");
}

std::string ReadFileResult::bytes() const {
    if (encoding != "base64") return content;
    std::string out;
    core::base64Decode(content, out);
    return out;
}

ReadFileResult SandboxOperations::readFile(std::string_view path, const ReadFileOptions& o) const
    try {
    checkPath(path, "file.read");
    return state_->conn().readFile(path, o, session_);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "readFile");
}

FileStream SandboxOperations::readFileStream(std::string_view path) const try {
    checkPath(path, "file.stream");
    return FileStream(state_->conn().readFileStream(path, session_));
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "readFileStream");
}

FileOpResult SandboxOperations::mkdir(std::string_view path, const MkdirOptions& o) const try {
    checkPath(path, "file.mkdir");
    FileOpResult r;
    r.path = std::string(path);
    r.timestamp = state_->conn().mkdir(path, o.recursive, session_);
    return r;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "mkdir");
}

FileOpResult SandboxOperations::deleteFile(std::string_view path) const try {
    checkPath(path, "file.delete");
    FileOpResult r;
    r.path = std::string(path);
    r.timestamp = state_->conn().deleteFile(path, session_);
    return r;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "deleteFile");
}

FileOpResult SandboxOperations::renameFile(std::string_view oldPath, std::string_view newPath) const
    try {
    checkPath(oldPath, "file.rename");
    checkPath(newPath, "file.rename");
    FileOpResult r;
    r.path = std::string(oldPath);
    r.newPath = std::string(newPath);
    r.timestamp = state_->conn().move(oldPath, newPath, true, session_);
    return r;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "renameFile");
}

FileOpResult SandboxOperations::moveFile(std::string_view sourcePath,
                                         std::string_view destinationPath) const try {
    checkPath(sourcePath, "file.move");
    checkPath(destinationPath, "file.move");
    FileOpResult r;
    r.path = std::string(sourcePath);
    r.newPath = std::string(destinationPath);
    r.timestamp = state_->conn().move(sourcePath, destinationPath, false, session_);
    return r;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "moveFile");
}

ListFilesResult SandboxOperations::listFiles(std::string_view path, const ListFilesOptions& o) const
    try {
    checkPath(path, "file.list");
    return state_->conn().listFiles(path, o, session_);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "listFiles");
}

ExistsResult SandboxOperations::exists(std::string_view path) const try {
    checkPath(path, "file.exists");
    return state_->conn().exists(path, session_);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "exists");
}

// ---- environment ----------------------------------------------------------------------------

void SandboxOperations::setEnvVars(const EnvVars& envVars) const try {
    checkEnvNames(envVars);
    if (session_) {
        // Session level: that shell only.
        state_->conn().setSessionEnv(*session_, envVars);
        return;
    }
    // Sandbox level: remembered for sessions created later and session-less calls, and applied
    // now to the default session when it exists.
    state_->info->updateEnv(envVars);
    state_->conn().sandboxEnvChanged(envVars);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "setEnvVars");
}

// ---- Sandbox: sessions and lifecycle --------------------------------------------------------

const std::string& Sandbox::id() const {
    return state_->info->name;
}

ExecutionSession Sandbox::createSession(const SessionOptions& o) const try {
    std::string id = o.id.value_or(newSessionId());
    if (id == core::wire::kNoSession)
        throw ValidationFailedError("VALIDATION_FAILED", "'" + id + "' is a reserved session id",
                                    400);
    // Session values over the sandbox-level ones (setEnvVars).
    state_->conn().createSession(id, o, state_->info->withSandboxEnv(o.env));
    return ExecutionSession(state_, id);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "createSession");
}

ExecutionSession Sandbox::getSession(std::string_view sessionId) const {
    return ExecutionSession(state_, std::string(sessionId));
}

SessionDeleteResult Sandbox::deleteSession(std::string_view sessionId) const try {
    SessionDeleteResult r;
    r.sessionId = std::string(sessionId);
    if (r.sessionId == state_->info->defaultSessionId())
        throw ValidationFailedError("VALIDATION_FAILED", "the default session cannot be deleted",
                                    400);
    r.timestamp = state_->conn().deleteSession(r.sessionId);
    return r;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "deleteSession");
}

void Sandbox::mountBucket(std::string_view bucket, std::string_view mountPath,
                          const MountBucketOptions& o) const try {
    state_->conn().mountBucket(bucket, mountPath, o);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "mountBucket");
}

void Sandbox::unmountBucket(std::string_view mountPath) const try {
    state_->conn().unmountBucket(mountPath);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "unmountBucket");
}

void Sandbox::destroy() const try {
    state_->conn().destroy();
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "destroy");
}

// ---- streams --------------------------------------------------------------------------------

ExecStream::ExecStream(std::unique_ptr<detail::ExecEventReader> events, std::string command)
    : events_(std::move(events)), command_(std::move(command)) {}
ExecStream::ExecStream(ExecStream&&) noexcept = default;
ExecStream& ExecStream::operator=(ExecStream&&) noexcept = default;
ExecStream::~ExecStream() = default;

ExecStream::iterator ExecStream::begin() {
    return iterator(this);
}

std::optional<ExecEvent> ExecStream::next() try {
    if (done_ || !events_) return std::nullopt;
    auto ev = events_->next();
    if (!ev) {
        done_ = true;
        throw StreamLostError("STREAM_LOST", "Stream ended without completion event", 0,
                              json{{"command", command_}}, "command.stream");
    }
    if (ev->type == ExecEvent::Type::Complete || ev->type == ExecEvent::Type::Error) done_ = true;
    return ev;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "next");
}

FileStream::FileStream(std::unique_ptr<detail::FileReader> reader) : reader_(std::move(reader)) {}
FileStream::FileStream(FileStream&&) noexcept = default;
FileStream& FileStream::operator=(FileStream&&) noexcept = default;
FileStream::~FileStream() = default;

const FileMetadata& FileStream::metadata() try {
    return reader_->metadata();
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "metadata");
}

std::optional<std::string> FileStream::nextChunk() try {
    return reader_->nextChunk();
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "nextChunk");
}

std::string FileStream::collect() try {
    std::string all;
    while (auto c = nextChunk()) all += *c;
    return all;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "collect");
}

}  // namespace sandbox

// ---- ScopedSandbox --------------------------------------------------------------------------

namespace sandbox {

ScopedSandbox::ScopedSandbox(Sandbox sandbox) : sandbox_(std::move(sandbox)) {}

ScopedSandbox::ScopedSandbox(ScopedSandbox&& other) noexcept
    : sandbox_(std::exchange(other.sandbox_, std::nullopt)) {}

ScopedSandbox& ScopedSandbox::operator=(ScopedSandbox&& other) noexcept {
    if (this != &other) {
        ScopedSandbox old(std::move(*this));  // destroys what this owned
        sandbox_ = std::exchange(other.sandbox_, std::nullopt);
    }
    return *this;
}

ScopedSandbox::~ScopedSandbox() {
    if (!sandbox_) return;
    try {
        sandbox_->destroy();
    } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw
    }
}

void ScopedSandbox::destroy() {
    if (!sandbox_) return;
    Sandbox sb = std::move(*sandbox_);
    sandbox_.reset();
    sb.destroy();
}

Sandbox ScopedSandbox::release() {
    Sandbox sb = std::move(*sandbox_);
    sandbox_.reset();
    return sb;
}

}  // namespace sandbox
