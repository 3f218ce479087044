#pragma once
// Workspace archives for /persist and /hydrate (docs/sandboxd.md), made and read with
// libarchive on the host side. Nothing here follows a symbolic link: every path is opened
// beneath the workspace directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so a
// hostile workspace or archive cannot make sandboxd read or write anything outside it.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/workspace_fs.hpp"

namespace sandbox::daemon {

/// A tar (POSIX pax, uncompressed) of a workspace directory, produced piece by piece so it can
/// be streamed: members are "./", "./a", "./a/b", ... as `tar cf - -C /workspace .` names them.
/// Regular files, directories, symbolic links (stored, not followed) and FIFOs are archived;
/// sockets and device nodes are skipped.
class WorkspaceTar {
  public:
    /// Scans `workspaceDir` (the host path of the sandbox's /workspace). `excludes` are the
    /// /persist items (tar `--exclude ./ITEM` semantics: a glob on the member name, matching
    /// the member or a directory above it). Throws std::runtime_error when the workspace
    /// cannot be read (before anything is produced).
    WorkspaceTar(const std::string& workspaceDir, const std::vector<std::string>& excludes);
    ~WorkspaceTar();
    WorkspaceTar(const WorkspaceTar&) = delete;
    WorkspaceTar& operator=(const WorkspaceTar&) = delete;

    /// Appends the next piece of the archive (at most about `maxBytes`) to `out`. Returns false
    /// once the archive is complete (its last piece has been appended). A file that vanishes
    /// between the scan and its turn is left out; one that shrinks is padded with zeros (as
    /// GNU tar does), one that grows is cut at its scanned size.
    bool next(std::string& out, std::size_t maxBytes = 256 * 1024);
    /// Number of members the scan found.
    std::size_t memberCount() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Limits on what an archive given to /hydrate may create.
struct HydrateLimits {
    std::uint64_t maxEntryBytes = 4ull << 30;  ///< largest member (its logical size)
    std::uint64_t maxTotalBytes = 1ull << 30;  ///< data written in all (after decompression)
    std::size_t maxEntries = 100000;           ///< members in all
};

/// Extracts the tar (optionally gzip/bzip2/xz/zstd compressed) in `data` into `workspaceDir`,
/// overlaying what is there. The archive is checked whole before anything is written: a member
/// with an absolute path, a `..` component, a hard link whose target is absolute or has `..`,
/// a device node or socket, or one beyond the limits makes the whole archive refused. While
/// extracting, no symbolic link is followed (an existing link on the way is an error, a link
/// at a member's own name is replaced), set-user/group-id bits are dropped and owners are not
/// restored: what is created belongs to `owner`. Returns "" on success, else the reason (GNU
/// tar's style: "NAME: what").
std::string extractToWorkspace(const std::string& workspaceDir, std::string_view data,
                               const HydrateLimits& limits = {}, FileOwner owner = {});

}  // namespace sandbox::daemon
