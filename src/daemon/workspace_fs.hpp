#pragma once
// Host-side access to a sandbox's workspace directory that can never leave it: every path is
// resolved with openat2(RESOLVE_IN_ROOT), so `..` and symlinks (absolute or relative) are
// confined to the workspace, as they would be inside the sandbox.
#include <sys/types.h>

#include <string>
#include <string_view>

namespace sandbox::daemon {

/// Who owns what sandboxd creates in a workspace on a sandbox's behalf (its host identity), so
/// the sandbox can change it later. -1 keeps sandboxd's own.
struct FileOwner {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
};

/// Bridge path rules (`resolveWorkspacePath`): absolute, or relative to /workspace; lexically
/// normalised; accepted only if it is /workspace or below, and has no NUL byte (the file routes
/// open it as a C string, which would end at the NUL). Returns "" when rejected.
std::string resolveWorkspacePath(std::string_view path);

/// Opens `rel` (relative to `rootDir`, e.g. "workspace/src/a.txt") for reading, never blocking
/// (a FIFO opens at once). Returns an fd, or -errno.
int openInWorkspace(const std::string& rootDir, const std::string& rel);
/// Creates/truncates `rel` for writing, creating missing parent directories inside `rootDir`;
/// what it creates (and the file) is given to `owner`. Returns an fd, or -errno.
int createInWorkspace(const std::string& rootDir, const std::string& rel, FileOwner owner = {});

}  // namespace sandbox::daemon
