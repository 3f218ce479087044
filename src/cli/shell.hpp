#pragma once
// `sandbox shell`: an interactive terminal in a sandbox, in the user's own terminal.
#include <sandbox/sandbox.hpp>

namespace sandbox::cli {

/// Runs the sandbox's terminal until its shell exits; returns the shell's exit code (1 when
/// the connection ended without one). Throws SandboxError when the terminal cannot be opened.
int runShell(const Sandbox& sb);

}  // namespace sandbox::cli
