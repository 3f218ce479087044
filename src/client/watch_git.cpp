// Sandbox::gitCheckout, Sandbox::watch, Sandbox::checkChanges and FileWatch: container-API
// features (routes /api/git/checkout, /api/watch, /api/watch/check). They need the agent
// transport or a bridge with the agent extension; over a narrow bridge they throw
// UnsupportedOperationError rather than emulate half of the behaviour.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "client/client_impl.hpp"
#include "client/container_connection.hpp"
#include "client/error_mapping.hpp"
#include "core/json_util.hpp"
#include "core/wire_git_watch.hpp"

namespace sandbox {
namespace wire = core::wire;
using detail::SandboxState;
using nlohmann::json;

namespace {

// Extra time the request may take beyond the clone timeout (as the TypeScript SDK).
constexpr std::chrono::milliseconds kGitRequestSlack{30'000};

detail::ContainerApi& requireAgent(SandboxState& st, const char* method) {
    return st.conn().containerApi(method);
}

FileWatchEvent parseWatchEvent(const json& j) {
    FileWatchEvent ev;
    std::string type = j.value("type", "");
    if (type == "watching") {
        ev.type = FileWatchEvent::Type::Watching;
        ev.path = j.value("path", "");
        ev.watchId = j.value("watchId", "");
    } else if (type == "stopped") {
        ev.type = FileWatchEvent::Type::Stopped;
        ev.reason = j.value("reason", "");
    } else if (type == "error") {
        ev.type = FileWatchEvent::Type::Error;
        ev.error = j.value("error", "");
    } else {
        ev.type = FileWatchEvent::Type::Event;
        ev.eventType = j.value("eventType", "");
        ev.path = j.value("path", "");
        ev.isDirectory = j.value("isDirectory", false);
        ev.timestamp = j.value("timestamp", "");
    }
    return ev;
}

wire::WatchRequest watchRequest(std::string_view path, bool recursive,
                                const std::vector<std::string>& include,
                                const std::vector<std::string>& exclude,
                                const std::optional<std::string>& session) {
    wire::WatchRequest req;
    req.path = std::string(path);
    req.recursive = recursive;
    req.include = include;
    req.exclude = exclude;
    req.sessionId = session;  // accepted and ignored by the container
    return req;
}

}  // namespace

FileWatch SandboxOperations::watch(std::string_view path, const WatchOptions& o) const try {
    auto& api = requireAgent(*state_, "watch()");
    auto req = watchRequest(path, o.recursive, o.include, o.exclude, session_);
    req.events = o.events;
    auto src = api.stream("POST", "/api/watch", detail::jsonBody(req.toJson(), "watch"), "watch");
    // Returns only once the watch is established: read up to the `watching` event.
    for (;;) {
        auto ev = src->next();
        if (!ev)
            throw StreamLostError("STREAM_LOST",
                                  "Watch stream ended before watcher was established", 0,
                                  json{{"path", std::string(path)}}, "watch");
        json j = core::parseJson(ev->data);
        if (!j.is_object()) continue;
        std::string type = j.value("type", "");
        if (type == "error")
            throw SandboxError("WATCH_START_ERROR", j.value("error", "the watch failed to start"),
                               500, json{{"path", std::string(path)}}, "watch");
        if (type == "watching") {
            std::string id = j.value("watchId", ""), p = j.value("path", "");
            src->push(std::move(*ev));  // the stream still starts with it
            return FileWatch(std::move(src), std::move(id), std::move(p));
        }
    }
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "watch");
}

CheckChangesResult SandboxOperations::checkChanges(std::string_view path,
                                                   const CheckChangesOptions& o) const try {
    auto& api = requireAgent(*state_, "checkChanges()");
    auto req = watchRequest(path, o.recursive, o.include, o.exclude, session_);
    req.since = o.since;
    auto w = wire::CheckChangesResponse::fromJson(
        api.post("/api/watch/check", req.toJson(), "watch.check"));
    return CheckChangesResult{w.success, w.status, w.reason, w.version, w.timestamp};
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "checkChanges");
}

GitCheckoutResult SandboxOperations::gitCheckout(std::string_view repoUrl,
                                                 const GitCheckoutOptions& o) const try {
    if (o.depth && *o.depth <= 0)
        throw ValidationFailedError(
            "VALIDATION_FAILED", "depth must be a positive integer", 400,
            json{{"validationErrors", json::array({{{"field", "depth"},
                                                    {"message", "must be a positive integer"},
                                                    {"code", "INVALID_DEPTH"}}})}},
            "git.clone");
    if (o.cloneTimeout && o.cloneTimeout->count() <= 0)
        throw ValidationFailedError(
            "VALIDATION_FAILED", "cloneTimeout must be a positive number of milliseconds", 400,
            json{{"validationErrors", json::array({{{"field", "timeoutMs"},
                                                    {"message", "must be a positive integer"},
                                                    {"code", "INVALID_TIMEOUT"}}})}},
            "git.clone");
    auto& api = requireAgent(*state_, "gitCheckout()");
    wire::GitCheckoutRequest req;
    req.repoUrl = std::string(repoUrl);
    req.branch = o.branch;
    req.targetDir = o.targetDir;  // absent: the container's default (<workspace>/<repo name>)
    if (o.depth) req.depth = *o.depth;
    auto timeout = o.cloneTimeout.value_or(std::chrono::milliseconds(wire::kDefaultCloneTimeoutMs));
    req.timeoutMs = timeout.count();
    req.sessionId = api.sessionFor(session_);

    // One request that may run as long as the clone: its own read timeout.
    const auto requestTimeout = state_->client->opts.requestTimeout;
    auto r = api.requester().call(api.endpoint(), "POST", "/api/git/checkout",
                                  detail::jsonBody(req.toJson(), "git.checkout"), {}, "git.clone",
                                  false, std::max(requestTimeout, timeout + kGitRequestSlack));
    json j = core::parseJson(r.body);
    if (!j.is_object())
        throw SandboxError("INVALID_JSON_RESPONSE", "the sandbox sent a response that is not JSON",
                           r.status, json::object(), "git.clone");
    auto w = wire::GitCheckoutResponse::fromJson(j);
    return GitCheckoutResult{w.success, w.repoUrl, w.branch, w.targetDir, w.timestamp};
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "gitCheckout");
}

// ---- FileWatch ------------------------------------------------------------------------------

FileWatch::FileWatch(std::unique_ptr<detail::EventSource> src, std::string watchId,
                     std::string path)
    : src_(std::move(src)), watchId_(std::move(watchId)), path_(std::move(path)) {}
FileWatch::FileWatch(FileWatch&&) noexcept = default;
FileWatch& FileWatch::operator=(FileWatch&&) noexcept = default;
FileWatch::~FileWatch() = default;

FileWatch::iterator FileWatch::begin() {
    return iterator(this);
}

void FileWatch::stop() {
    done_ = true;
    src_.reset();  // closing the connection unsubscribes
}

std::optional<FileWatchEvent> FileWatch::next() try {
    if (done_ || !src_) return std::nullopt;
    for (;;) {
        auto ev = src_->next();
        if (!ev) {
            done_ = true;
            throw StreamLostError("STREAM_LOST", "Watch stream ended without a stopped event", 0,
                                  json{{"path", path_}}, "watch");
        }
        json j = core::parseJson(ev->data);
        if (!j.is_object() || !j.contains("type")) continue;
        auto out = parseWatchEvent(j);
        if (out.type == FileWatchEvent::Type::Stopped || out.type == FileWatchEvent::Type::Error)
            done_ = true;
        return out;
    }
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "next");
}

}  // namespace sandbox
