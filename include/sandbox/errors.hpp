#pragma once
/// @file
/// The SDK's exceptions. They mirror the TypeScript SDK's error classes: every error the
/// sandbox reports is a SandboxError carrying the wire `code` (e.g. "FILE_NOT_FOUND"), the HTTP
/// status, the operation and a context object; a typed subclass is chosen from the code (one
/// table, shared with the servers). Failures of the connection itself are TransportError
/// subclasses, so a caller can tell "the command failed" (a result, not an exception),
/// "the sandbox refused" (SandboxError) and "we lost the sandbox" (TransportError).
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace sandbox {

/// Base of every SDK exception.
class SandboxError : public std::runtime_error {
  public:
    SandboxError(std::string code, std::string message, int httpStatus = 500,
                 nlohmann::json context = nlohmann::json::object(), std::string operation = {});
    /// The wire code: a container code ("FILE_NOT_FOUND"), a bridge code ("unauthorized"), or an
    /// SDK-side code ("CONNECTION_FAILED", ...).
    const std::string& code() const noexcept { return code_; }
    /// HTTP status of the failed request (0 when no response was received).
    int httpStatus() const noexcept { return httpStatus_; }
    /// The operation, e.g. "file.read" (empty when the server did not say).
    const std::string& operation() const noexcept { return operation_; }
    /// Code-specific details (always an object).
    const nlohmann::json& context() const noexcept { return context_; }
    /// A string field of context(), or "" when absent.
    std::string contextString(const char* key) const;

  private:
    std::string code_;
    int httpStatus_;
    nlohmann::json context_;
    std::string operation_;
};

#define SANDBOX_DECLARE_ERROR(Name, Base) \
    class Name : public Base {            \
      public:                             \
        using Base::Base;                 \
    };

/// FILE_NOT_FOUND (404); path() names the file.
class FileNotFoundError : public SandboxError {
  public:
    using SandboxError::SandboxError;
    std::string path() const { return contextString("path"); }
};
SANDBOX_DECLARE_ERROR(FileExistsError, SandboxError)        ///< FILE_EXISTS (409)
SANDBOX_DECLARE_ERROR(FileTooLargeError, SandboxError)      ///< FILE_TOO_LARGE (413)
SANDBOX_DECLARE_ERROR(PermissionDeniedError, SandboxError)  ///< PERMISSION_DENIED (403)
/// IS_DIRECTORY, NOT_DIRECTORY, NO_SPACE, READ_ONLY, FILESYSTEM_ERROR, ...
SANDBOX_DECLARE_ERROR(FileSystemError, SandboxError)
SANDBOX_DECLARE_ERROR(CommandNotFoundError, SandboxError)  ///< COMMAND_NOT_FOUND (404)
/// INVALID_COMMAND, COMMAND_EXECUTION_ERROR, STREAM_START_ERROR
SANDBOX_DECLARE_ERROR(CommandError, SandboxError)
/// COMMAND_EXECUTION_ERROR (500) from exec() when the command ran past ExecOptions::timeout and
/// was stopped: the same on every transport, in a session or not. context() holds `command`,
/// `timeoutMs` and, where the transport kept it, the output so far (`stdout`, `stderr`).
SANDBOX_DECLARE_ERROR(CommandTimeoutError, CommandError)
SANDBOX_DECLARE_ERROR(ProcessNotFoundError, SandboxError)       ///< PROCESS_NOT_FOUND (404)
SANDBOX_DECLARE_ERROR(ProcessError, SandboxError)               ///< PROCESS_ERROR
SANDBOX_DECLARE_ERROR(SessionAlreadyExistsError, SandboxError)  ///< SESSION_ALREADY_EXISTS (409)
SANDBOX_DECLARE_ERROR(SessionDestroyedError, SandboxError)      ///< SESSION_DESTROYED (410)
/// SESSION_TERMINATED (410): the session's shell exited (e.g. `exit 7`); the next call with the
/// same id gets a fresh session.
SANDBOX_DECLARE_ERROR(SessionTerminatedError, SandboxError)
SANDBOX_DECLARE_ERROR(PortAlreadyExposedError, SandboxError)
SANDBOX_DECLARE_ERROR(PortInUseError, SandboxError)
SANDBOX_DECLARE_ERROR(PortNotExposedError, SandboxError)
SANDBOX_DECLARE_ERROR(InvalidPortError, SandboxError)
SANDBOX_DECLARE_ERROR(ServiceNotRespondingError, SandboxError)
SANDBOX_DECLARE_ERROR(PortError, SandboxError)
SANDBOX_DECLARE_ERROR(CustomDomainRequiredError, SandboxError)
SANDBOX_DECLARE_ERROR(GitError, SandboxError)  ///< GIT_OPERATION_FAILED; base of the git errors
SANDBOX_DECLARE_ERROR(GitRepositoryNotFoundError, GitError)
SANDBOX_DECLARE_ERROR(GitBranchNotFoundError, GitError)
SANDBOX_DECLARE_ERROR(GitAuthenticationError, GitError)
SANDBOX_DECLARE_ERROR(GitNetworkError, GitError)
SANDBOX_DECLARE_ERROR(InvalidGitUrlError, GitError)
SANDBOX_DECLARE_ERROR(GitCloneError, GitError)
SANDBOX_DECLARE_ERROR(GitCheckoutError, GitError)
SANDBOX_DECLARE_ERROR(BucketMountError, SandboxError)
SANDBOX_DECLARE_ERROR(BucketUnmountError, BucketMountError)
SANDBOX_DECLARE_ERROR(S3FSMountError, BucketMountError)
SANDBOX_DECLARE_ERROR(MissingCredentialsError, BucketMountError)
SANDBOX_DECLARE_ERROR(InvalidMountConfigError, BucketMountError)
SANDBOX_DECLARE_ERROR(BackupCreateError, SandboxError)
SANDBOX_DECLARE_ERROR(BackupRestoreError, SandboxError)
SANDBOX_DECLARE_ERROR(BackupNotFoundError, SandboxError)
SANDBOX_DECLARE_ERROR(BackupExpiredError, SandboxError)
SANDBOX_DECLARE_ERROR(InvalidBackupConfigError, SandboxError)
SANDBOX_DECLARE_ERROR(InterpreterNotReadyError, SandboxError)
SANDBOX_DECLARE_ERROR(ContextNotFoundError, SandboxError)
SANDBOX_DECLARE_ERROR(CodeExecutionError, SandboxError)
SANDBOX_DECLARE_ERROR(ProcessReadyTimeoutError, SandboxError)
SANDBOX_DECLARE_ERROR(ProcessExitedBeforeReadyError, SandboxError)
/// VALIDATION_FAILED (400): the request was malformed; context()["validationErrors"] says how.
SANDBOX_DECLARE_ERROR(ValidationFailedError, SandboxError)
SANDBOX_DECLARE_ERROR(RPCTransportError, SandboxError)
SANDBOX_DECLARE_ERROR(ContainerUnavailableError, SandboxError)
SANDBOX_DECLARE_ERROR(OperationInterruptedError, SandboxError)
/// "unauthorized" (401): the API key was missing or wrong.
SANDBOX_DECLARE_ERROR(AuthenticationError, SandboxError)
/// An invalid sandbox name (empty, longer than 63 characters, leading/trailing '-', reserved).
SANDBOX_DECLARE_ERROR(SandboxSecurityError, SandboxError)
/// The method cannot work over the configured transport (the message says which one it needs).
SANDBOX_DECLARE_ERROR(UnsupportedOperationError, SandboxError)

/// The connection to the sandbox failed; the command may or may not have run.
SANDBOX_DECLARE_ERROR(TransportError, SandboxError)
/// Could not connect (refused, unreachable, DNS, TLS handshake). Code "CONNECTION_FAILED".
SANDBOX_DECLARE_ERROR(ConnectionError, TransportError)
/// A stream broke before its terminal event. Code "STREAM_LOST".
SANDBOX_DECLARE_ERROR(StreamLostError, TransportError)
/// The sandbox went away (destroyed, or its agent died) during the call. Code "SANDBOX_GONE".
SANDBOX_DECLARE_ERROR(SandboxGoneError, TransportError)
/// No answer within the configured timeout. Code "TIMEOUT".
SANDBOX_DECLARE_ERROR(TimeoutError, TransportError)

#undef SANDBOX_DECLARE_ERROR

}  // namespace sandbox
