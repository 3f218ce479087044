#pragma once
// The container API's git and file-watch messages: one
// definition per message with its JSON mapping, used by sandbox-agent and the SDK. Also the
// helpers both sides need: credential redaction in URLs, the default clone directory name, and
// the watch glob syntax.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandbox::core::wire {

// ---- git ----------------------------------------------------------------------------------

/// Default clone timeout (ms) of /api/git/checkout.
inline constexpr std::int64_t kDefaultCloneTimeoutMs = 600000;
/// Longest accepted repository URL.
inline constexpr std::size_t kMaxGitUrlLength = 2048;

/// POST /api/git/checkout
struct GitCheckoutRequest {
    std::string repoUrl;
    std::optional<std::string> branch;
    std::optional<std::string> targetDir;
    std::optional<std::int64_t> depth;
    std::optional<std::int64_t> timeoutMs;
    std::optional<std::string> sessionId;
    /// Reads the fields with their types checked (a wrong type: 400 VALIDATION_FAILED); the
    /// value rules (URL, depth, timeout) are checked by validateGitCheckout().
    static GitCheckoutRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Success body of POST /api/git/checkout.
struct GitCheckoutResponse {
    bool success = true;
    std::string repoUrl;  ///< with credentials redacted
    std::string branch;   ///< the branch checked out
    std::string targetDir;
    std::string timestamp;
    static GitCheckoutResponse fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Problems with a repository URL (empty when it is acceptable): blank, longer than 2048
/// characters, NUL or other control characters, a leading '-', or a transport other than
/// http(s), git, ssh, file, ftp(s) (e.g. git's `ext::` command transport).
std::string gitUrlProblems(std::string_view url);

/// The URL with any user-info (`user:token@`) replaced by `***@`; also applied to every URL
/// inside a longer text (git's stderr), so credentials never reach a message or a log.
std::string redactCredentials(std::string_view text);

/// The default clone directory name: the last path segment of the URL without `.git`
/// ("repository" when there is none).
std::string repoNameFromUrl(std::string_view url);

// ---- file watch ---------------------------------------------------------------------------

/// The event kinds of /api/watch.
inline const std::vector<std::string>& watchEventTypes() {
    static const std::vector<std::string> all = {"create",    "modify",  "delete",
                                                 "move_from", "move_to", "attrib"};
    return all;
}
/// Events watched when a request names none.
inline const std::vector<std::string>& defaultWatchEvents() {
    static const std::vector<std::string> d = {"create", "modify", "delete", "move_from",
                                               "move_to"};
    return d;
}
/// Exclusions used when a request has neither include nor exclude patterns.
inline const std::vector<std::string>& defaultWatchExcludes() {
    static const std::vector<std::string> d = {".git", "node_modules", ".DS_Store"};
    return d;
}

/// POST /api/watch and (with `since`) POST /api/watch/check.
struct WatchRequest {
    std::string path;
    std::optional<bool> recursive;
    std::vector<std::string> include;
    std::vector<std::string> exclude;
    std::vector<std::string> events;  ///< empty: the default set
    std::optional<std::string> sessionId;
    std::optional<std::string> since;  ///< /api/watch/check only
    /// Types checked (400 naming the field); value rules in the agent.
    static WatchRequest fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Success body of POST /api/watch/check.
struct CheckChangesResponse {
    bool success = true;
    std::string status;                 ///< "unchanged", "changed" or "resync"
    std::optional<std::string> reason;  ///< resync: "expired" or "restarted"
    std::string version;                ///< "<watchId>:<cursor>"
    std::string timestamp;
    static CheckChangesResponse fromJson(const nlohmann::json& j);
    nlohmann::json toJson() const;
};

/// Problems with a watch glob (empty when fine): blank, NUL, or `[ ] { }` (only `*`, `**`, `?`
/// and path separators are supported).
std::string watchGlobProblems(std::string_view pattern);
/// True when `path` matches one of the globs, with the reference's rule (each glob read as the
/// regular expression `(^|/)<re>(/|$)` searched in the path, where `*` -> `[^/]*`, `**` -> `.*`,
/// `?` -> `[^/]`): the glob must match a run of whole path segments somewhere in the path.
/// `*.log` matches `a/b/x.log`; `build` matches `build` and `x/build/y`. Backtracking on the
/// glob only (no std::regex: this runs for every event of a busy tree).
bool watchGlobMatch(const std::vector<std::string>& patterns, std::string_view path);

/// SSE events of /api/watch, rendered as single-line JSON.
namespace watch_event {
std::string watching(std::string_view path, std::string_view watchId);
std::string event(std::string_view eventType, std::string_view path, bool isDirectory,
                  std::string_view timestamp);
std::string stopped(std::string_view reason);
std::string error(std::string_view message);
}  // namespace watch_event

}  // namespace sandbox::core::wire
