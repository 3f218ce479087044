// The warm pool (docs/sandboxd.md): sandboxes started ahead of demand under stateDir/pool/, each a
// complete bubblewrap sandbox with its agent listening. The first request for a new id takes
// the oldest ready one: its directory is renamed to the id's (the sandbox's /workspace is a
// bind of that directory's inode, and sandboxd reaches the agent's socket through an fd of its
// run directory, so neither notices the rename), and a refill is started behind it.
#include <sys/stat.h>

#include <filesystem>

#include "daemon/sandbox_manager.hpp"
#include "server/http_call.hpp"

namespace sandbox::daemon {
namespace fs = std::filesystem;

void SandboxManager::stopWarm(const std::shared_ptr<Sandbox>& sb) {
    teardown(*sb);
    if (sb->startError.empty()) sb->startError = "the warm sandbox was stopped";
    if (sb->started) sb->started->set();
}

core::wire::PoolStats SandboxManager::poolStats() const {
    core::wire::PoolStats s;
    for (const auto& sb : warm_)
        if (sb->ready && sb->primed && !sb->dead) ++s.warm;
    s.assigned = static_cast<std::int64_t>(sandboxes_.size());
    s.total = s.warm + s.assigned;
    s.config = cfg_.pool;
    if (cfg_.pool.maxInstances > 0) s.maxInstances = cfg_.pool.maxInstances;
    return s;
}

void SandboxManager::checkCapacity() const {
    const std::int64_t max = cfg_.pool.maxInstances;
    const auto used = static_cast<std::int64_t>(warm_.size() + sandboxes_.size());
    if (max > 0 && used >= max)
        throw CapacityError("Cannot start container: instance limit reached (" +
                            std::to_string(used) + "/" + std::to_string(max) +
                            "). All container slots are in use. Wait for existing containers "
                            "to stop.");
}

std::shared_ptr<Sandbox> SandboxManager::takeWarm(const std::string& id) {
    // Only a ready one: bubblewrap resolves the workspace's path while it starts, so a
    // sandbox still starting cannot be renamed under it. Primed ones first.
    std::shared_ptr<Sandbox> pick;
    for (int pass = 0; pass < 2 && !pick; ++pass)
        for (auto it = warm_.begin(); it != warm_.end(); ++it) {
            auto& sb = *it;
            if (sb->dead || !sb->ready || sb->pid <= 0 || !os::isAlive(sb->pid)) continue;
            if (pass == 0 && !sb->primed) continue;
            pick = sb;
            warm_.erase(it);
            break;
        }
    if (!pick) return nullptr;
    std::string root = cfg_.stateDir + "/sandboxes/" + id;
    std::error_code ec;
    fs::remove_all(root, ec);  // a leftover of an id nobody owns
    if (::rename(pick->root.c_str(), root.c_str()) != 0) {
        stopWarm(pick);
        return nullptr;
    }
    pick->id = id;
    pick->root = root;
    pick->workspace = root + "/workspace";
    pick->socket = root + "/run/agent.sock";
    return pick;
}

void SandboxManager::adjustPool() {
    // Dead ones go (they will be replaced below).
    for (auto it = warm_.begin(); it != warm_.end();) {
        auto& sb = *it;
        if (sb->dead || (sb->ready && sb->pid > 0 && !os::isAlive(sb->pid))) {
            stopWarm(sb);
            it = warm_.erase(it);
        } else {
            ++it;
        }
    }
    // Only bubblewrap sandboxes can be renamed under a running agent (with --isolation none
    // the agent knows its workspace by its host path).
    const std::int64_t target =
        cfg_.isolation == Isolation::Bwrap ? std::max<std::int64_t>(cfg_.pool.warmTarget, 0) : 0;
    while (static_cast<std::int64_t>(warm_.size()) > target) {
        stopWarm(warm_.front());
        warm_.erase(warm_.begin());
    }
    std::int64_t deficit = target - static_cast<std::int64_t>(warm_.size());
    if (cfg_.pool.maxInstances > 0)
        deficit = std::min<std::int64_t>(
            deficit,
            cfg_.pool.maxInstances - static_cast<std::int64_t>(warm_.size() + sandboxes_.size()));
    for (std::int64_t i = 0; i < deficit; ++i) {
        auto sb = std::make_shared<Sandbox>();
        sb->id = "warm" + std::to_string(++poolSeq_);
        sb->root = cfg_.stateDir + "/pool/" + sb->id;
        sb->workspace = sb->root + "/workspace";
        sb->socket = sb->root + "/run/agent.sock";
        std::error_code ec;
        fs::remove_all(sb->root, ec);
        try {
            launch(sb);
        } catch (const std::exception&) {
            stopWarm(sb);
            break;  // try again at the next refresh
        }
        warm_.push_back(sb);
        net::co_spawn(ex_, primeWarm(sb), net::detached);
    }
}

awaitable<void> SandboxManager::primeWarm(std::shared_ptr<Sandbox> sb) {
    // The agent's first command costs a few milliseconds more than the next ones (first
    // connection, first spawn in the new namespaces): pay it here, before anyone waits.
    auto alive = alive_;
    auto started = sb->started;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    co_await started->waitUntil(deadline);
    if (!*alive || !sb->ready || sb->dead) co_return;
    server::HttpCall up(ex_, server::HttpPeer::unixSocket(sb->connectPath(), "the sandbox agent"));
    server::Headers headers{{"content-type", "application/json"}};
    std::string body = R"({"command":"true","sessionId":"__DISABLE_SESSION__"})";
    bool ok = co_await up.start("POST", "/api/execute/stream", body, headers);
    std::string out;
    if (ok) co_await up.readAll(out);
    if (*alive) sb->primed = true;  // taken or not, it is as ready as it will get
}

void SandboxManager::primePool() {
    adjustPool();
    if (poolLoopRunning_) return;
    poolLoopRunning_ = true;
    net::co_spawn(ex_, poolLoop(), net::detached);
}

awaitable<void> SandboxManager::poolLoop() {
    auto alive = alive_;
    if (!poolTimer_) poolTimer_ = std::make_unique<net::steady_timer>(ex_);
    for (;;) {
        const auto interval = std::chrono::milliseconds(std::max<std::int64_t>(
            cfg_.pool.refreshInterval > 0 ? cfg_.pool.refreshInterval : 10000, 10));
        poolTimer_->expires_after(interval);
        boost::system::error_code ec;
        co_await poolTimer_->async_wait(net::redirect_error(net::use_awaitable, ec));
        if (!*alive || !poolLoopRunning_) co_return;
        adjustPool();
    }
}

void SandboxManager::shutdownPrewarmed() {
    for (auto& sb : warm_) stopWarm(sb);
    warm_.clear();
}

}  // namespace sandbox::daemon
