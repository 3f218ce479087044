#pragma once
// S3-compatible buckets mounted into sandboxes (POST /v1/sandbox/:id/mount; docs/sandboxd.md).
//
// A sandbox has no network and no right to mount anything, so s3fs runs on the host, as a child
// of sandboxd, on a directory of sandboxd's own (<state>/mounts/…, never inside a sandbox's
// directory: nothing that removes sandbox directories can reach into a bucket). That mount is
// then cloned (open_tree) and attached (move_mount) inside the sandbox's own mount namespace at
// the requested path, so it exists for the sandbox alone. Unmounting detaches it there, then
// unmounts the host side and stops s3fs; a sandbox that is destroyed or restarted loses its
// mounts the same way.

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "daemon/workspace_fs.hpp"

namespace sandbox::daemon {

/// What a remote (S3-compatible) mount needs.
struct BucketSpec {
    std::string bucket;
    std::string endpoint;
    std::string prefix;  ///< "" or starting with "/"
    bool readOnly = false;
    std::string accessKeyId, secretAccessKey;
    std::vector<std::string> s3fsOptions;  ///< each one "-o" value, checked by s3fsOptionRefused
};

/// One bucket mounted into a sandbox.
struct BucketMount {
    std::string path;     ///< inside the sandbox, lexically normalised
    std::string key;      ///< the path as the unmount route normalises it (a file URL's pathname)
    std::string hostDir;  ///< where s3fs mounted it on the host
    pid_t s3fs = -1;
};

/// "" when this host can mount buckets into sandboxes, else what is missing (s3fs, /dev/fuse,
/// bubblewrap isolation).
std::string bucketMountsUnavailable(bool bwrapIsolation);

/// Why an s3fs option from a request cannot be used, or "". s3fs runs on the host as sandboxd's
/// user, so only options that change how the bucket is read are accepted (no file paths: no
/// cache directories, password files or logs of the client's choosing).
std::string s3fsOptionRefused(const std::string& option);

/// Starts `s3fs` in the foreground for `spec` on `hostDir` (which must exist and be empty),
/// writing its messages to `logPath`. The credentials travel in its environment, never on disk
/// or on a command line. Returns the pid; throws std::system_error when it cannot be spawned.
pid_t startS3fs(const BucketSpec& spec, const std::string& hostDir, const std::string& logPath);

/// Whether `dir` is a mount point in sandboxd's own mount namespace.
bool isMountPoint(const std::string& dir);

/// A process in the sandbox's own mount namespace (a descendant of `launcher` whose namespace
/// is not sandboxd's), or -1.
pid_t sandboxNamespacePid(pid_t launcher);

/// Attaches a clone of the mount at `hostDir` at `path` inside the mount namespace of `nsPid`,
/// creating the missing directories there without following symbolic links, as `owner` (the
/// sandbox's host identity: its file systems accept only ids its user namespace maps). A
/// directory that must be made on the sandbox's read-only root is made by making that root
/// writable for the moment (never another mount: those are the host's read-only binds).
/// Throws std::runtime_error with the reason.
void attachInto(pid_t nsPid, const std::string& hostDir, const std::string& path,
                FileOwner owner = {});

/// Detaches the mount at `path` inside the namespace of `nsPid` and removes the directory when
/// it is empty (as `owner`). Throws std::runtime_error when nothing could be unmounted.
void detachFrom(pid_t nsPid, const std::string& path, FileOwner owner = {});

/// Unmounts the host side, stops s3fs and removes hostDir (failures ignored).
void releaseHostSide(BucketMount& m);

/// At start-up: unmounts and removes what an earlier sandboxd left in `mountsDir` (entries are
/// unmounted and rmdir'ed, never removed recursively).
void cleanStaleMounts(const std::string& mountsDir);

}  // namespace sandbox::daemon
