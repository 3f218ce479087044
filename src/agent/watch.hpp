#pragma once
// File watching on inotify directly (the service behind POST /api/watch and /api/watch/check;
// docs/watch.md). Knows nothing of HTTP: watch_routes.cpp streams what it reports.
//
// One Watch per distinct request (path, recursive, include, exclude, events) is shared by every
// subscriber that asks for it. A recursive watch adds an inotify watch to each directory,
// including the ones created later; a new directory is scanned right after its watch is added,
// so files created in it before that moment are reported as `create` too. The watch keeps a
// snapshot of the tree (path -> type, size, mtime); when the kernel's event queue overflows
// (IN_Q_OVERFLOW) the tree is rescanned and the differences are reported as
// create/delete/modify events, so a subscriber's view of the final state stays right (with a
// notice saying a rescan happened). A subscriber gets events in at most one batch per 75 ms (the
// first event after a quiet time at once); consecutive duplicates of one path collapse, nothing
// is dropped.
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/base.hpp"
#include "core/wire_git_watch.hpp"

namespace sandbox::agent {

class Watch;
struct WatchSubscriber;

/// What a watch request asks for, validated and resolved (WatchService::resolve).
struct WatchSpec {
    std::string path;  ///< absolute, canonical
    bool recursive = true;
    bool rootIsDir = true;
    unsigned events = 0;  ///< a set of event kinds (watch.cpp)
    std::vector<std::string> include, exclude;
    /// Requests with the same key share one watch.
    std::string key() const;
};

/// One change as a subscriber receives it.
struct WatchEvent {
    std::string type;  ///< create, modify, delete, move_from, move_to, attrib
    std::string path;
    bool isDirectory = false;
    std::string timestamp;
};

/// What a subscriber takes at once (WatchSubscription::take).
struct WatchBatch {
    std::vector<std::string> notices;  ///< for people (a rescan after a queue overflow)
    std::vector<WatchEvent> events;
    /// Events dropped since the last batch because this subscriber fell too far behind.
    std::size_t dropped = 0;
    bool ended = false;   ///< the watch stopped: nothing follows this batch
    bool failed = false;  ///< it stopped on an error
    std::string endText;  ///< why it stopped
};

/// A subscriber's place on a watch. unsubscribe() (or the destructor) leaves it; a watch
/// nobody follows stops, unless checkChanges() retains it.
class WatchSubscription {
  public:
    WatchSubscription(std::shared_ptr<Watch> watch, std::shared_ptr<WatchSubscriber> sub);
    ~WatchSubscription();
    WatchSubscription(const WatchSubscription&) = delete;
    WatchSubscription& operator=(const WatchSubscription&) = delete;

    /// The watch's id (shared by its subscribers).
    const std::string& watchId() const;
    /// Waits for something to take: until events, notices or the watch's end arrive (or
    /// cancel()), then until 75 ms have passed since the previous take.
    awaitable<void> wait();
    /// Takes what is pending (possibly nothing).
    WatchBatch take();
    /// The reader is gone: wait() returns now and from now on.
    void cancel();
    bool cancelled() const;
    void unsubscribe();

  private:
    std::shared_ptr<Watch> watch_;
    std::shared_ptr<WatchSubscriber> sub_;
    std::chrono::steady_clock::time_point lastTake_;
    bool subscribed_ = true;
};

/// The agent's watches. Owned by the Agent; destroying it stops every watch.
class WatchService {
  public:
    /// `workspace`: watches must stay inside it. Reads SANDBOX_MAX_WATCHES (default 64).
    WatchService(net::any_io_executor ex, std::string workspace);
    ~WatchService();
    WatchService(const WatchService&) = delete;
    WatchService& operator=(const WatchService&) = delete;

    /// A request's values checked and resolved: a path inside the workspace that exists (even
    /// through symbolic links), valid globs, known events. Throws core::ApiError:
    /// VALIDATION_FAILED, PERMISSION_DENIED or FILE_NOT_FOUND.
    WatchSpec resolve(const core::wire::WatchRequest& request) const;
    /// A new subscriber of the running watch for `spec`, which is started when there is none.
    /// Throws core::ApiError WATCH_START_ERROR (inotify refused, too many watches).
    std::shared_ptr<WatchSubscription> subscribe(const WatchSpec& spec);
    /// POST /api/watch/check: whether anything changed since the version `since` (unchanged,
    /// changed, or resync when that version belongs to another watch). Keeps the watch for ten
    /// minutes after the last check. Throws core::ApiError as resolve() and subscribe().
    core::wire::CheckChangesResponse checkChanges(const core::wire::WatchRequest& request);
    /// Stops every watch (shutdown); their subscribers see the end.
    void stopAll();

    /// Forgets a watch that stopped (called by the watch).
    void remove(const Watch* watch);

  private:
    /// The running watch for `spec`, or a new one (`created` says which).
    std::shared_ptr<Watch> acquire(const WatchSpec& spec, bool& created);

    net::any_io_executor ex_;
    std::string workspace_;
    std::map<std::string, std::shared_ptr<Watch>> watches_;
    std::uint64_t counter_ = 0;
    std::size_t maxWatches_ = 64;
};

}  // namespace sandbox::agent
