#include "agent/watch.hpp"

#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "core/errors.hpp"
#include "core/text.hpp"
#include "core/time.hpp"
#include "core/wire_git_watch.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

namespace {

// Events per subscriber are sent in batches this far apart (bursts collapse).
constexpr std::chrono::milliseconds kBatchWindow{75};
// A retained watch (checkChanges) without live streams is forgotten this long after the last check.
constexpr std::chrono::minutes kRetainIdle{10};
// Pending events one subscriber may hold (distinct path/type runs) before the rest are dropped
// with a notice; far above what a 75 ms window collects from a busy tree.
constexpr std::size_t kMaxPending = 1'000'000;

enum Kind : unsigned {
    kCreate = 1,
    kModify = 2,
    kDelete = 4,
    kMoveFrom = 8,
    kMoveTo = 16,
    kAttrib = 32,
};

const char* kindName(unsigned k) {
    switch (k) {
        case kCreate:
            return "create";
        case kModify:
            return "modify";
        case kDelete:
            return "delete";
        case kMoveFrom:
            return "move_from";
        case kMoveTo:
            return "move_to";
        default:
            return "attrib";
    }
}

unsigned kindOf(const std::string& name) {
    static const std::pair<const char*, unsigned> all[] = {
        {"create", kCreate},      {"modify", kModify},  {"delete", kDelete},
        {"move_from", kMoveFrom}, {"move_to", kMoveTo}, {"attrib", kAttrib}};
    for (const auto& [n, k] : all)
        if (name == n) return k;
    return 0;
}

std::string joinPath(const std::string& dir, std::string_view name) {
    if (dir == "/") return "/" + std::string(name);
    return dir + "/" + std::string(name);
}

}  // namespace

std::string WatchSpec::key() const {
    std::string k = path + '\n' + (recursive ? "r" : "-") + '\n' + std::to_string(events);
    for (const auto& p : include) k += "\ni:" + p;
    for (const auto& p : exclude) k += "\ne:" + p;
    return k;
}

// A subscriber's pending events and state, shared by its watch and its WatchSubscription.
struct WatchSubscriber {
    // One pending event.
    struct Pending {
        unsigned kind;
        std::string path;
        bool isDir;
        std::string timestamp;
    };

    explicit WatchSubscriber(net::any_io_executor ex)
        : wake(ex, net::steady_timer::time_point::max()), batch(ex) {}
    std::vector<Pending> pending;
    std::unordered_map<std::string, std::size_t> last;  // path -> index of its latest pending
    std::vector<std::string> notices;                   // for people (WatchBatch::notices)
    net::steady_timer wake;                             // cancelled when something arrives
    net::steady_timer batch;  // the batch window (WatchSubscription::wait)
    bool gone = false, stopped = false, failed = false;
    std::string endText;  // stop reason or error message
    std::size_t dropped = 0;

    void push(unsigned kind, const std::string& path, bool isDir, const std::string& ts) {
        if (auto it = last.find(path); it != last.end()) {
            const Pending& p = pending[it->second];
            if (p.kind == kind && p.isDir == isDir) return;  // same as its latest: collapse
        }
        if (pending.size() >= kMaxPending) {
            ++dropped;
            return;
        }
        last[path] = pending.size();
        pending.push_back({kind, path, isDir, ts});
    }
    void notify() { wake.cancel(); }
};

class Watch : public std::enable_shared_from_this<Watch> {
  public:
    Watch(WatchService* svc, net::any_io_executor ex, WatchSpec spec, std::string id)
        : svc_(svc), ex_(ex), spec_(std::move(spec)), id_(std::move(id)), sd_(ex), expiry_(ex) {}

    const std::string& id() const { return id_; }
    const std::string& key() const { return key_; }
    std::uint64_t cursor() const { return cursor_; }
    bool stopped() const { return stopped_; }

    /// Creates the inotify instance and the watches. Throws ApiError WATCH_START_ERROR.
    void start(std::string key) {
        key_ = std::move(key);
        int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0) startError(std::string("inotify_init1: ") + std::strerror(errno));
        sd_.assign(fd);
        std::string problem;
        if (spec_.rootIsDir) {
            if (!addTree(spec_.path, false, &problem)) startError(problem);
        } else {
            int wd = ::inotify_add_watch(fd, spec_.path.c_str(),
                                         IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF);
            if (wd < 0) startError(addWatchProblem(spec_.path, errno));
            wds_[wd] = spec_.path;
            rootWd_ = wd;
        }
        net::co_spawn(
            ex_, [self = shared_from_this()] { return self->readLoop(); }, net::detached);
    }

    std::shared_ptr<WatchSubscriber> subscribe() {
        auto s = std::make_shared<WatchSubscriber>(ex_);
        subs_.push_back(s);
        return s;
    }

    void unsubscribe(const std::shared_ptr<WatchSubscriber>& s) {
        std::erase(subs_, s);
        if (stopped_ || !subs_.empty()) return;
        if (!retained_)
            stop("Watch stopped after last subscriber disconnected", false);
        else
            armExpiry();
    }

    /// A checkChanges call: keeps the watch alive for kRetainIdle after it.
    void retain() {
        retained_ = true;
        lastCheck_ = std::chrono::steady_clock::now();
        armExpiry();
    }

    /// Reads and handles every event the kernel has queued (non-blocking).
    void pump() {
        if (stopped_) return;
        alignas(struct inotify_event) char buf[64 * 1024];
        std::string ts;
        bool any = false;
        for (;;) {
            ssize_t n = ::read(sd_.native_handle(), buf, sizeof buf);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN) break;
                stop(std::string("reading inotify events failed: ") + std::strerror(errno), true);
                return;
            }
            if (n == 0) break;
            ts = core::isoTimestampNow();
            for (char* p = buf; p < buf + n;) {
                auto* ev = reinterpret_cast<struct inotify_event*>(p);
                p += sizeof(struct inotify_event) + ev->len;
                std::string_view name = ev->len ? std::string_view(ev->name) : std::string_view();
                handle(ev->wd, ev->mask, ev->cookie, name, ts);
                any = true;
                if (stopped_) return;
            }
        }
        for (auto& [cookie, dir] : movedDirs_) forgetBelow(dir, true);  // moved out of the tree
        movedDirs_.clear();
        if (any) notifyAll();
        if (rootGone_) stop("Watch process ended", false);
    }

    void stop(const std::string& text, bool failed) {
        if (stopped_) return;
        stopped_ = true;
        boost::system::error_code ec;
        sd_.close(ec);
        expiry_.cancel();
        for (auto& s : subs_) {
            s->stopped = true;
            s->failed = failed;
            s->endText = text;
            s->notify();
        }
        forget();
    }

    /// The service is going away: this watch stops and no longer reports to it.
    void detach() {
        svc_ = nullptr;
        stop("The agent is shutting down", false);
    }

  private:
    struct Entry {
        bool isDir = false;
        std::int64_t size = 0;
        std::int64_t mtimeNs = 0;
    };

    [[noreturn]] void startError(const std::string& problem) {
        boost::system::error_code ec;
        sd_.close(ec);
        stopped_ = true;
        throw ApiError("WATCH_START_ERROR",
                       "Failed to start watching " + spec_.path + ": " + problem,
                       {{"path", spec_.path}});
    }

    static std::string addWatchProblem(const std::string& path, int err) {
        if (err == ENOSPC)
            return "the inotify watch limit is reached (fs.inotify.max_user_watches); raise it "
                   "or watch a smaller tree";
        return "inotify_add_watch " + path + ": " + std::strerror(err);
    }

    awaitable<void> readLoop() {
        auto self = shared_from_this();
        while (!stopped_) {
            boost::system::error_code ec;
            co_await sd_.async_wait(net::posix::stream_descriptor::wait_read,
                                    net::redirect_error(use_awaitable, ec));
            if (ec || stopped_) break;
            pump();
        }
    }

    void forget();  // removes this watch from the service

    void armExpiry() {
        if (stopped_ || !retained_) return;
        expiry_.expires_at(lastCheck_ + kRetainIdle);
        expiry_.async_wait([w = weak_from_this()](const boost::system::error_code& ec) {
            auto self = w.lock();
            if (ec || !self || self->stopped_) return;
            if (!self->subs_.empty()) return;  // re-armed when the last stream leaves
            if (std::chrono::steady_clock::now() < self->lastCheck_ + kRetainIdle) {
                self->armExpiry();
                return;
            }
            self->stop("Retained change state expired after idle period", false);
        });
    }

    void notifyAll() {
        for (auto& s : subs_) s->notify();
    }

    std::string relative(const std::string& path) const {
        if (path == spec_.path) {
            auto slash = path.find_last_of('/');
            return path.substr(slash + 1);
        }
        return spec_.path == "/" ? path.substr(1) : path.substr(spec_.path.size() + 1);
    }

    bool excluded(const std::string& path) const {
        return !spec_.exclude.empty() && wire::watchGlobMatch(spec_.exclude, relative(path));
    }

    void report(unsigned kind, const std::string& path, bool isDir, const std::string& ts) {
        if (!(spec_.events & kind)) return;
        if (!spec_.include.empty() && !wire::watchGlobMatch(spec_.include, relative(path))) return;
        ++cursor_;
        for (auto& s : subs_) s->push(kind, path, isDir, ts);
    }

    static bool statEntry(const std::string& path, Entry& e) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) != 0) return false;
        e.isDir = S_ISDIR(st.st_mode);
        e.size = st.st_size;
        e.mtimeNs =
            static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
        return true;
    }

    std::uint32_t dirMask() const {
        std::uint32_t m = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                          IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK;
        if (spec_.events & kModify) m |= IN_MODIFY;
        if (spec_.events & kAttrib) m |= IN_ATTRIB;
        return m;
    }

    // Watches `dir` (and, when recursive, every directory below it), then records what is in
    // it; with `emit`, entries not yet known are reported as created (they appeared before the
    // directory's watch existed). Returns false with `problem` when the watch cannot be added.
    bool addTree(const std::string& dir, bool emit, std::string* problem,
                 std::unordered_set<int>* seen = nullptr, const std::string& ts = {}) {
        std::uint32_t mask = dirMask();
        if (dir != spec_.path) mask |= IN_DONT_FOLLOW;
        int wd = ::inotify_add_watch(sd_.native_handle(), dir.c_str(), mask);
        if (wd < 0) {
            int err = errno;
            if (err == ENOSPC || dir == spec_.path) {
                if (problem) *problem = addWatchProblem(dir, err);
                return false;
            }
            return true;  // vanished or unreadable meanwhile: nothing to watch there
        }
        wds_[wd] = dir;
        if (seen) seen->insert(wd);
        if (dir == spec_.path) rootWd_ = wd;
        DIR* d = ::opendir(dir.c_str());
        if (!d) return true;
        std::vector<std::pair<std::string, bool>> subdirs;
        while (auto* de = ::readdir(d)) {
            std::string_view n = de->d_name;
            if (n == "." || n == "..") continue;
            std::string p = joinPath(dir, n);
            if (excluded(p)) continue;
            Entry e;
            if (!statEntry(p, e)) continue;
            auto [it, fresh] = snapshot_.try_emplace(p, e);
            if (!fresh) it->second = e;
            if (fresh && emit) report(kCreate, p, e.isDir, ts);
            if (e.isDir && spec_.recursive) subdirs.emplace_back(std::move(p), fresh);
        }
        ::closedir(d);
        for (auto& [p, fresh] : subdirs)
            if (!addTree(p, emit, problem, seen, ts)) return false;
        return true;
    }

    void forgetBelow(const std::string& dir, bool dropWatches) {
        for (auto it = snapshot_.begin(); it != snapshot_.end();)
            it = core::pathIsUnder(it->first, dir) && it->first != dir ? snapshot_.erase(it)
                                                                       : std::next(it);
        if (!dropWatches) return;
        for (auto it = wds_.begin(); it != wds_.end();) {
            if (core::pathIsUnder(it->second, dir)) {
                ::inotify_rm_watch(sd_.native_handle(), it->first);
                it = wds_.erase(it);
            } else {
                ++it;
            }
        }
    }

    // Renames the watches and snapshot entries below `from` to below `to`.
    void renameBelow(const std::string& from, const std::string& to) {
        auto moved = [&](const std::string& p) { return to + p.substr(from.size()); };
        for (auto& [wd, dir] : wds_)
            if (core::pathIsUnder(dir, from)) dir = moved(dir);
        std::vector<std::pair<std::string, Entry>> renamed;
        for (auto it = snapshot_.begin(); it != snapshot_.end();) {
            if (it->first != from && core::pathIsUnder(it->first, from)) {
                renamed.emplace_back(moved(it->first), it->second);
                it = snapshot_.erase(it);
            } else {
                ++it;
            }
        }
        for (auto& [p, e] : renamed) snapshot_[p] = e;
    }

    void handle(int wd, std::uint32_t mask, std::uint32_t cookie, std::string_view name,
                const std::string& ts) {
        if (mask & IN_Q_OVERFLOW) {
            rescan(ts);
            return;
        }
        auto it = wds_.find(wd);
        if (it == wds_.end()) return;
        const std::string dir = it->second;
        if (mask & IN_IGNORED) {
            wds_.erase(it);
            if (wd == rootWd_) rootGone_ = true;
            return;
        }
        if (mask & IN_UNMOUNT) {
            if (wd == rootWd_) rootGone_ = true;
            return;
        }
        if (name.empty()) {  // about the watched object itself
            if (!spec_.rootIsDir && wd == rootWd_) {
                if (mask & IN_MODIFY) report(kModify, dir, false, ts);
                if (mask & IN_ATTRIB) report(kAttrib, dir, false, ts);
                if (mask & IN_DELETE_SELF) report(kDelete, dir, false, ts);
                if (mask & IN_MOVE_SELF) report(kMoveFrom, dir, false, ts);
            }
            if ((mask & (IN_DELETE_SELF | IN_MOVE_SELF)) && wd == rootWd_) rootGone_ = true;
            return;
        }
        std::string path = joinPath(dir, name);
        bool isDir = mask & IN_ISDIR;
        if (excluded(path)) return;
        if (mask & IN_CREATE) {
            Entry e;
            e.isDir = isDir;
            statEntry(path, e);
            auto [pos, fresh] = snapshot_.try_emplace(path, e);
            bool known = !fresh && pos->second.isDir == isDir;
            pos->second = e;
            if (!known) report(kCreate, path, isDir, ts);  // else: the scan reported it already
            if (isDir && spec_.recursive) addTree(path, true, nullptr, nullptr, ts);
        }
        if (mask & IN_MOVED_FROM) {
            snapshot_.erase(path);
            // A directory moved within the tree keeps its watches (renamed on IN_MOVED_TO with
            // the same cookie); one moved out of the tree loses them at the end of this batch.
            if (isDir) movedDirs_[cookie] = path;
            report(kMoveFrom, path, isDir, ts);
        }
        if (mask & IN_MOVED_TO) {
            Entry e;
            e.isDir = isDir;
            statEntry(path, e);
            snapshot_[path] = e;
            report(kMoveTo, path, isDir, ts);
            if (isDir) {
                auto from = movedDirs_.find(cookie);
                bool within = from != movedDirs_.end();
                if (within) {
                    renameBelow(from->second, path);
                    movedDirs_.erase(from);
                }
                // Entries it brings from outside the tree are recorded, not reported (as a
                // moved directory's content is not "created"); new ones inside it are.
                if (spec_.recursive) addTree(path, within, nullptr, nullptr, ts);
            }
        }
        if (mask & IN_DELETE) {
            snapshot_.erase(path);
            if (isDir) forgetBelow(path, false);
            report(kDelete, path, isDir, ts);
        }
        if (mask & IN_MODIFY) {
            if (auto s = snapshot_.find(path); s != snapshot_.end()) statEntry(path, s->second);
            report(kModify, path, isDir, ts);
        }
        if (mask & IN_ATTRIB) report(kAttrib, path, isDir, ts);
    }

    // The kernel dropped events: walk the tree again and report what differs from what we knew.
    void rescan(const std::string& ts) {
        for (auto& s : subs_)
            s->notices.push_back("inotify event queue overflowed: rescanned " + spec_.path +
                                 "; the differences follow as create/delete/modify events");
        if (!spec_.rootIsDir) {
            Entry e;
            if (statEntry(spec_.path, e))
                report(kModify, spec_.path, false, ts);
            else
                rootGone_ = true;
            return;
        }
        auto before = std::move(snapshot_);
        snapshot_.clear();
        std::unordered_set<int> seen;
        std::string problem;
        if (!addTree(spec_.path, false, &problem, &seen, ts)) {
            stop(problem, true);
            return;
        }
        for (auto it = wds_.begin(); it != wds_.end();) {  // directories gone or moved away
            if (!seen.count(it->first)) {
                ::inotify_rm_watch(sd_.native_handle(), it->first);
                it = wds_.erase(it);
            } else {
                ++it;
            }
        }
        std::vector<std::pair<std::string, bool>> deleted;
        for (const auto& [p, e] : before) {
            auto now = snapshot_.find(p);
            if (now == snapshot_.end() || now->second.isDir != e.isDir)
                deleted.emplace_back(p, e.isDir);
        }
        std::sort(deleted.begin(), deleted.end(),
                  [](const auto& a, const auto& b) { return a.first > b.first; });  // deepest first
        for (const auto& [p, d] : deleted) report(kDelete, p, d, ts);
        std::map<std::string, const Entry*> ordered;
        for (const auto& [p, e] : snapshot_) ordered.emplace(p, &e);
        for (const auto& [p, e] : ordered) {
            auto old = before.find(p);
            if (old == before.end() || old->second.isDir != e->isDir)
                report(kCreate, p, e->isDir, ts);
            else if (!e->isDir &&
                     (old->second.size != e->size || old->second.mtimeNs != e->mtimeNs))
                report(kModify, p, false, ts);
        }
    }

    WatchService* svc_;  // null once the service is gone
    net::any_io_executor ex_;
    WatchSpec spec_;
    std::string id_, key_;
    net::posix::stream_descriptor sd_;
    net::steady_timer expiry_;
    std::unordered_map<int, std::string> wds_;
    std::unordered_map<std::string, Entry> snapshot_;
    std::unordered_map<std::uint32_t, std::string> movedDirs_;  // IN_MOVED_FROM cookie -> path
    std::vector<std::shared_ptr<WatchSubscriber>> subs_;
    std::uint64_t cursor_ = 0;
    int rootWd_ = -1;
    bool rootGone_ = false, stopped_ = false, retained_ = false;
    std::chrono::steady_clock::time_point lastCheck_{};
};

void Watch::forget() {
    if (svc_) svc_->remove(this);
}

namespace {

[[noreturn]] void badRequest(const std::string& message, json context) {
    throw ApiError("VALIDATION_FAILED", message, std::move(context));
}

}  // namespace

// ---- the service ----------------------------------------------------------------------------

WatchService::WatchService(net::any_io_executor ex, std::string workspace)
    : ex_(ex), workspace_(std::move(workspace)) {
    // Each watch holds one inotify instance; the kernel allows few per user
    // (fs.inotify.max_user_instances, often 128), shared with every other program.
    if (const char* v = std::getenv("SANDBOX_MAX_WATCHES"); v && *v) {
        char* end = nullptr;
        unsigned long n = std::strtoul(v, &end, 10);
        if (end && *end == '\0' && n > 0) maxWatches_ = n;
    }
}

WatchService::~WatchService() {
    stopAll();
}

void WatchService::stopAll() {
    auto all = std::move(watches_);
    watches_.clear();
    for (auto& [key, watch] : all) watch->detach();
}

std::shared_ptr<Watch> WatchService::acquire(const WatchSpec& spec, bool& created) {
    std::string key = spec.key();
    if (auto it = watches_.find(key); it != watches_.end() && !it->second->stopped()) {
        created = false;
        return it->second;
    }
    if (watches_.size() >= maxWatches_)
        throw ApiError("WATCH_START_ERROR",
                       "Failed to start watching " + spec.path + ": too many watches (" +
                           std::to_string(maxWatches_) +
                           ", SANDBOX_MAX_WATCHES); stop some streams first",
                       {{"path", spec.path}});
    std::string id =
        "watch-" + std::to_string(++counter_) + "-" + std::to_string(core::epochMillisNow());
    auto w = std::make_shared<Watch>(this, ex_, spec, id);
    w->start(key);
    watches_[key] = w;
    created = true;
    return w;
}

void WatchService::remove(const Watch* w) {
    auto it = watches_.find(w->key());
    if (it != watches_.end() && it->second.get() == w) watches_.erase(it);
}

// The request's value rules (docs/watch.md): a path inside the workspace that exists, globs,
// events.
WatchSpec WatchService::resolve(const wire::WatchRequest& r) const {
    WatchSpec spec;
    std::string p = core::trim(r.path);
    if (p.empty())
        throw core::validationError("path must be a non-empty string", "path", "INVALID_PATH",
                                    "must not be blank");
    if (r.path.find('\0') != std::string::npos)
        throw core::validationError("path must not contain NUL bytes", "path", "INVALID_PATH",
                                    "must not contain NUL bytes");
    std::string root = core::resolvePath("/", workspace_);
    std::string resolved = core::resolvePath(root, p);
    auto denied = [&] {
        throw ApiError("PERMISSION_DENIED", "path must be inside " + root,
                       {{"path", r.path}, {"resolvedPath", resolved}, {"workspaceRoot", root}});
    };
    if (!core::pathIsUnder(resolved, root)) denied();
    if (!r.include.empty() && !r.exclude.empty())
        badRequest("include and exclude cannot be used together",
                   {{"include", r.include}, {"exclude", r.exclude}});
    for (const auto* list : {&r.include, &r.exclude})
        for (const auto& pat : *list)
            if (auto problem = wire::watchGlobProblems(pat); !problem.empty())
                badRequest(std::string(list == &r.include ? "include" : "exclude") + " pattern '" +
                               pat + "' " + problem,
                           {{"pattern", pat}});
    for (const auto& e : r.events) {
        unsigned k = kindOf(e);
        if (!k)
            throw core::validationError(
                "Unsupported watch event '" + e +
                    "' (supported: create, modify, delete, move_from, move_to, attrib)",
                "events", "INVALID_EVENT", "unsupported event '" + e + "'");
        spec.events |= k;
    }
    if (!spec.events)
        for (const auto& e : wire::defaultWatchEvents()) spec.events |= kindOf(e);
    struct stat st {};
    if (::stat(resolved.c_str(), &st) != 0)
        throw ApiError("FILE_NOT_FOUND", "Path does not exist: " + resolved,
                       {{"path", resolved}, {"operation", "watch"}}, "watch");
    // Symbolic links must not lead the watch out of the workspace either.
    char realRoot[PATH_MAX], realPath[PATH_MAX];
    if (::realpath(root.c_str(), realRoot) && ::realpath(resolved.c_str(), realPath) &&
        !core::pathIsUnder(realPath, realRoot))
        denied();
    spec.path = resolved;
    spec.rootIsDir = S_ISDIR(st.st_mode);
    spec.recursive = r.recursive.value_or(true);
    spec.include = r.include;
    spec.exclude = r.exclude;
    if (spec.include.empty() && spec.exclude.empty()) spec.exclude = wire::defaultWatchExcludes();
    return spec;
}

std::shared_ptr<WatchSubscription> WatchService::subscribe(const WatchSpec& spec) {
    bool created = false;
    auto watch = acquire(spec, created);
    auto sub = watch->subscribe();
    return std::make_shared<WatchSubscription>(std::move(watch), std::move(sub));
}

wire::CheckChangesResponse WatchService::checkChanges(const wire::WatchRequest& request) {
    if (request.since) {
        if (core::trim(*request.since).empty() || request.since->find('\0') != std::string::npos)
            badRequest("since must be a non-empty version string", {{"since", *request.since}});
    }
    WatchSpec spec = resolve(request);
    bool created = false;
    auto watch = acquire(spec, created);
    watch->pump();           // everything the kernel queued up to now counts
    if (watch->stopped()) {  // it ended just now (its directory went away): start afresh
        watch = acquire(spec, created);
        watch->pump();
    }
    watch->retain();
    wire::CheckChangesResponse out;
    out.version = watch->id() + ":" + std::to_string(watch->cursor());
    out.status = "unchanged";
    if (request.since) {
        const std::string& since = *request.since;
        auto colon = since.rfind(':');
        bool parsed = colon != std::string::npos && colon > 0 && colon + 1 < since.size() &&
                      since.size() - colon - 1 <= 19 &&
                      std::all_of(since.begin() + static_cast<std::ptrdiff_t>(colon) + 1,
                                  since.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!parsed)
            badRequest("since must be a version returned by checkChanges()", {{"since", since}});
        std::string sinceId = since.substr(0, colon);
        std::uint64_t sinceCursor = std::stoull(since.substr(colon + 1));
        if (sinceId != watch->id()) {
            out.status = "resync";
            out.reason = created ? "expired" : "restarted";
        } else if (sinceCursor > watch->cursor()) {
            badRequest(
                "since is ahead of this watch's version: it was not returned by "
                "checkChanges()",
                {{"since", since}, {"version", out.version}});
        } else if (sinceCursor < watch->cursor()) {
            out.status = "changed";
        }
    }
    out.timestamp = core::isoTimestampNow();
    return out;
}

// ---- a subscription -------------------------------------------------------------------------

WatchSubscription::WatchSubscription(std::shared_ptr<Watch> watch,
                                     std::shared_ptr<WatchSubscriber> sub)
    : watch_(std::move(watch)), sub_(std::move(sub)), lastTake_(std::chrono::steady_clock::now()) {}

WatchSubscription::~WatchSubscription() {
    unsubscribe();
}

const std::string& WatchSubscription::watchId() const {
    return watch_->id();
}

void WatchSubscription::unsubscribe() {
    if (subscribed_) watch_->unsubscribe(sub_);
    subscribed_ = false;
}

void WatchSubscription::cancel() {
    sub_->gone = true;
    sub_->notify();
}

bool WatchSubscription::cancelled() const {
    return sub_->gone;
}

awaitable<void> WatchSubscription::wait() {
    auto sub = sub_;
    if (sub->pending.empty() && sub->notices.empty() && !sub->stopped && !sub->gone) {
        boost::system::error_code ec;
        sub->wake.expires_at(net::steady_timer::time_point::max());
        co_await sub->wake.async_wait(net::redirect_error(use_awaitable, ec));
    }
    if (sub->gone) co_return;
    // At most one batch per window: the first event after a quiet time goes out at once, the
    // events of a burst gather until the window since the last batch is over.
    auto nextBatch = lastTake_ + kBatchWindow;
    if (!sub->stopped && std::chrono::steady_clock::now() < nextBatch) {
        boost::system::error_code ec;
        sub->batch.expires_at(nextBatch);
        co_await sub->batch.async_wait(net::redirect_error(use_awaitable, ec));
    }
}

WatchBatch WatchSubscription::take() {
    WatchSubscriber& s = *sub_;
    WatchBatch b;
    b.notices.swap(s.notices);
    std::vector<WatchSubscriber::Pending> pending;
    pending.swap(s.pending);
    s.last.clear();
    b.events.reserve(pending.size());
    for (auto& e : pending)
        b.events.push_back({kindName(e.kind), std::move(e.path), e.isDir, std::move(e.timestamp)});
    b.dropped = std::exchange(s.dropped, 0);
    b.ended = s.stopped;
    b.failed = s.failed;
    b.endText = s.endText;
    lastTake_ = std::chrono::steady_clock::now();
    return b;
}

}  // namespace sandbox::agent
