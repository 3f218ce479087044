#pragma once
// Git checkout (the service behind POST /api/git/checkout; docs/git.md): clones a repository by
// spawning the `git` binary directly (no shell), with a timeout that kills the whole git process
// tree. Credentials in URLs are redacted in every message it produces.
#include <optional>
#include <string>

#include "agent/agent.hpp"
#include "core/wire_git_watch.hpp"

namespace sandbox::agent {

/// Validates and runs one clone. `contextSessionId` is the session named by the request's
/// headers or query (used when the body names none). Throws core::ApiError: INVALID_GIT_URL,
/// VALIDATION_FAILED, GIT_NETWORK_ERROR (timeout), GIT_REPOSITORY_NOT_FOUND,
/// GIT_BRANCH_NOT_FOUND, GIT_AUTH_FAILED, GIT_OPERATION_FAILED or GIT_CLONE_FAILED.
awaitable<core::wire::GitCheckoutResponse> gitCheckout(
    Agent& agent, const core::wire::GitCheckoutRequest& request,
    const std::optional<std::string>& contextSessionId);

/// The error code for a failed clone from git's exit code (124: the timeout) and its stderr:
/// the reference's mapping, plus typed codes for a missing branch or repository on exit 128.
std::string gitErrorCode(int exitCode, std::string_view stderrText);

}  // namespace sandbox::agent
