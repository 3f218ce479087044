#include "agent/agent.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cstdlib>
#include <random>

#include "core/errors.hpp"
#include "core/time.hpp"

namespace sandbox::agent {

namespace {
std::string randomChars(std::string_view alphabet, int n) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string s;
    for (int i = 0; i < n; ++i) s.push_back(alphabet[rng() % alphabet.size()]);
    return s;
}
}  // namespace

std::string newProcessId() {
    return "proc_" + std::to_string(core::epochMillisNow()) + "_" +
           randomChars("0123456789abcdefghijklmnopqrstuvwxyz", 6);
}

std::string newSessionId() {
    return "session_" + std::to_string(core::epochMillisNow()) + "_" +
           randomChars("0123456789abcdef", 12);
}

Agent::Agent(net::any_io_executor ex, AgentConfig cfg)
    : ex_(ex), cfg_(std::move(cfg)), procs_(ex) {}

Agent::~Agent() {
    shutdown();
}

std::shared_ptr<Session> Agent::createSession(const core::wire::SessionCreateRequest& req) {
    std::string id = req.id.value_or(newSessionId());
    if (auto it = sessions_.find(id); it != sessions_.end()) {
        if (it->second->alive()) {
            const char* placement = std::getenv("CLOUDFLARE_PLACEMENT_ID");
            throw core::ApiError("SESSION_ALREADY_EXISTS", "Session '" + id + "' already exists",
                                 {{"sessionId", id},
                                  {"containerPlacementId", placement ? nlohmann::json(placement)
                                                                     : nlohmann::json(nullptr)}});
        }
        evictIfDead(id);
    }
    Session::Options o{id, req.env, req.cwd.value_or(cfg_.workspace),
                       req.commandTimeoutMs ? req.commandTimeoutMs : cfg_.defaultCommandTimeoutMs};
    auto s = Session::spawn(ex_, std::move(o));
    sessions_[id] = s;
    sessionOrder_.push_back(id);
    return s;
}

std::shared_ptr<Session> Agent::session(const std::string& id,
                                        const std::optional<std::string>& cwdHint,
                                        std::optional<std::int64_t> timeoutHint) {
    if (auto it = sessions_.find(id); it != sessions_.end()) {
        if (it->second->alive()) return it->second;
        evictIfDead(id);
    }
    core::wire::SessionCreateRequest req;
    req.id = id;
    req.cwd = cwdHint;
    req.commandTimeoutMs = timeoutHint;
    return createSession(req);
}

std::vector<std::string> Agent::sessionIds() const {
    return sessionOrder_;
}

void Agent::evictIfDead(const std::string& id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second->alive()) return;
    it->second->destroy();
    sessions_.erase(it);
    std::erase(sessionOrder_, id);
}

awaitable<void> Agent::deleteSession(const std::string& id) {
    auto it = sessions_.find(id);
    if (it == sessions_.end())
        throw core::ApiError("SESSION_NOT_FOUND", "Session '" + id + "' not found",
                             {{"sessionId", id}})
            .withStatus(404);
    auto s = it->second;
    sessions_.erase(it);
    std::erase(sessionOrder_, id);
    // Its background processes go with it, descendants that left the tree included.
    procs_.killSessionNow(id);
    // Kill first so an in-flight command ends (its request gets SESSION_DESTROYED), then
    // wait for the lock so the delete completes after it.
    s->destroy();
    if (onSessionDeleted) onSessionDeleted(id);
    auto guard = co_await LockGuard::acquire(s->mutex());
}

std::shared_ptr<ProcessRecord> Agent::addProcess(std::string command, std::string sessionId,
                                                 std::shared_ptr<RunningCommand> run,
                                                 std::optional<std::string> id, std::string tag) {
    return procs_.add(std::move(command), std::move(sessionId), std::move(run), std::move(id),
                      std::move(tag));
}

std::shared_ptr<RunningCommand> Agent::spawnSessionless(const CommandSpec& spec) {
    Pipe out = Pipe::make(), err = Pipe::make();
    Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    std::vector<std::pair<std::string, std::optional<std::string>>> overrides;
    for (const auto& [k, v] : spec.env)
        if (v) overrides.emplace_back(k, *v);
    SpawnOptions so;
    so.argv = {"/bin/bash", "-c", spec.command};
    so.env = environWith(overrides);
    so.cwd = spec.cwd.value_or(cfg_.workspace);
    so.fds = {{0, devnull.get()}, {1, out.write.get()}, {2, err.write.get()}};
    pid_t pid = spawnProcess(so);
    Fd pidfd = openPidFd(pid);
    auto rc = std::make_shared<RunningCommand>(ex_, pid, std::move(out.read), std::move(err.read),
                                               std::move(pidfd), RunningCommand::ExitSource::PidFd);
    rc->start();
    return rc;
}

void Agent::shutdown() {
    procs_.killAllNow();
    for (auto& [id, s] : sessions_) s->destroy();
    sessions_.clear();
    sessionOrder_.clear();
}

}  // namespace sandbox::agent
