#pragma once
/// @file
/// Git checkout and file watching: the options and results of Sandbox::gitCheckout(),
/// Sandbox::watch() and Sandbox::checkChanges(), and FileWatch, the pull range of file events.
///
/// ```cpp
/// auto r = sb.gitCheckout("https://github.com/org/repo", {.branch = "main", .depth = 1});
/// auto w = sb.watch("/workspace/src", {.include = {"*.cpp"}});   // returns once established
/// for (auto& ev : w)
///     if (ev.type == sandbox::FileWatchEvent::Type::Event) std::cout << ev.eventType << " " <<
///     ev.path;
/// ```
#include <chrono>
#include <cstddef>
#include <iterator>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/pull_iterator.hpp"

namespace sandbox {

namespace detail {
class EventSource;
}

/// Options of gitCheckout().
struct GitCheckoutOptions {
    /// The branch (or tag) to check out; default: the remote's default branch.
    std::optional<std::string> branch;
    /// Where to clone; default `<workspace>/<repository name>` (the last URL segment without
    /// `.git`, or "repository"). A relative path is relative to the session's directory.
    std::optional<std::string> targetDir;
    /// A shallow clone of this many commits (must be positive).
    std::optional<int> depth;
    /// Kill the clone after this long (default 10 minutes; must be positive). The request itself
    /// may take 30 s more.
    std::optional<std::chrono::milliseconds> cloneTimeout;
};

/// Result of gitCheckout().
struct GitCheckoutResult {
    bool success = true;
    std::string repoUrl;    ///< the URL, credentials redacted (`https://***@host/...`)
    std::string branch;     ///< the branch checked out
    std::string targetDir;  ///< the absolute clone directory
    std::string timestamp;
};

/// Options of watch().
struct WatchOptions {
    bool recursive = true;  ///< watch subdirectories too, including ones created later
    /// Only report paths matching one of these globs (`*`, `**`, `?`, `/`); matched against the
    /// path relative to the watched directory, on whole path segments (`*.ts`, `src/**`).
    std::vector<std::string> include;
    /// Never report (or descend into) paths matching these globs. Default when neither list is
    /// given: `.git`, `node_modules`, `.DS_Store`. Cannot be combined with `include`.
    std::vector<std::string> exclude;
    /// Event kinds: "create", "modify", "delete", "move_from", "move_to", "attrib". Default: all
    /// but "attrib".
    std::vector<std::string> events;
};

/// Options of checkChanges(): the watch options plus the version of a previous call.
struct CheckChangesOptions {
    bool recursive = true;             ///< as WatchOptions::recursive
    std::vector<std::string> include;  ///< as WatchOptions::include
    std::vector<std::string> exclude;  ///< as WatchOptions::exclude
    /// The `version` a previous checkChanges() returned; absent: just start tracking.
    std::optional<std::string> since;
};

/// Result of checkChanges().
struct CheckChangesResult {
    bool success = true;
    /// "unchanged", "changed" (something happened since `since`), or "resync" (the tracking
    /// state of `since` is gone: look at everything again).
    std::string status;
    std::optional<std::string> reason;  ///< resync: "expired" or "restarted"
    std::string version;                ///< pass as `since` next time
    std::string timestamp;
};

/// One event of a watch() stream.
struct FileWatchEvent {
    enum class Type {
        Watching,  ///< the watch is established (always the first event)
        Event,     ///< a file event: eventType, path, isDirectory, timestamp
        Stopped,   ///< the watch ended: reason (terminal)
        Error,     ///< the watch failed: error (terminal)
    } type = Type::Event;
    /// "create", "modify", "delete", "move_from", "move_to" or "attrib" (Type::Event).
    std::string eventType;
    std::string path;  ///< the file's absolute path (Event); the watched path (Watching)
    bool isDirectory = false;
    std::string timestamp;
    std::string watchId;  ///< Watching
    std::string reason;   ///< Stopped
    std::string error;    ///< Error
};

/// The event as the container API's watch stream sends it (one line of JSON).
std::string to_string(const FileWatchEvent& event);
/// The same as a JSON object (`nlohmann::json j = event;`).
void to_json(nlohmann::json& j, const FileWatchEvent& event);

/// The events of a file watch, pulled one by one: `for (auto& ev : sb.watch(dir))`. Starts with
/// the `Watching` event; ends after a `Stopped` or `Error` event. Destroying it (or stop())
/// ends the watch for this stream. next() blocks until the next event.
class FileWatch {
  public:
    /// Input iterator over the items (see PullIterator).
    using iterator = PullIterator<FileWatch, FileWatchEvent>;
    FileWatch(FileWatch&&) noexcept;
    FileWatch& operator=(FileWatch&&) noexcept;
    ~FileWatch();
    /// The watch's id (from the `watching` event).
    const std::string& watchId() const { return watchId_; }
    /// The absolute path being watched.
    const std::string& path() const { return path_; }
    /// The next event, or nullopt after the terminal one (or after stop()). Throws
    /// StreamLostError when the connection ends without a terminal event.
    std::optional<FileWatchEvent> next();
    /// Ends the watch for this stream now (the server stops it when no stream is left).
    void stop();
    iterator begin();
    std::default_sentinel_t end() { return {}; }

  private:
    friend class SandboxOperations;
    FileWatch(std::unique_ptr<detail::EventSource> src, std::string watchId, std::string path);
    std::unique_ptr<detail::EventSource> src_;
    std::string watchId_, path_;
    bool done_ = false;
};

}  // namespace sandbox
