#pragma once
// The bridge's rules for client-supplied paths, as pure functions (no file system): how a
// request path is decoded and routed, and where a bucket may be mounted. Shared by sandboxd's
// routes and the fuzz targets (tests/fuzz).
#include <string>
#include <string_view>

namespace sandbox::daemon {

/// Bridge path decoding, as the reference's router decodes a path before routing: percent-decodes
/// except the reserved characters `; / ? : @ & = + $ , #` and `%25`, keeping undecodable runs
/// verbatim.
std::string decodeBridgePath(std::string_view raw);

/// RFC 3986 remove_dot_segments for an absolute path: "." and ".." segments are resolved, but
/// empty segments and a trailing slash stay, since routing is strict about them.
std::string removeDotSegments(std::string_view path);

/// `path` (absolute) with "." and ".." resolved and "//" collapsed, without a trailing "/".
std::string normaliseSandboxPath(std::string_view path);

/// Why a bucket cannot be mounted at `path` (normalised), or "": not over "/", "/workspace"
/// itself (its host copy is what persist and the file routes' host side read), nor under
/// /proc, /dev, /sys or /run (sandboxd's channel to the agent lives there), nor at a path with
/// a NUL byte (the system calls would see only the part before it).
std::string mountPathRefused(const std::string& path);

}  // namespace sandbox::daemon
