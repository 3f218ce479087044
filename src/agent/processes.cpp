#include "agent/processes.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "agent/agent.hpp"
#include "core/errors.hpp"
#include "core/json_util.hpp"
#include "core/shell.hpp"
#include "core/time.hpp"
#include "core/utf8.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;

// ---- the output ring ---------------------------------------------------------------------

void ProcessLog::append(int stream, std::string data) {
    if (data.empty()) return;
    if (data.size() > limit_) {  // only the newest part of an oversized chunk can be kept
        std::size_t cut = data.size() - limit_;
        // Cut at a character boundary (data is valid UTF-8).
        while (cut < data.size() && (static_cast<unsigned char>(data[cut]) & 0xC0) == 0x80) ++cut;
        dropped_[stream] += cut;
        data.erase(0, cut);
    }
    size_ += data.size();
    chunks_.push_back(Chunk{nextSeq_++, stream, std::move(data)});
    while (size_ > limit_ && !chunks_.empty()) {
        auto& front = chunks_.front();
        size_ -= front.data.size();
        dropped_[front.stream] += front.data.size();
        chunks_.pop_front();
    }
}

std::string ProcessLog::text(int stream) const {
    std::string s;
    for (const auto& c : chunks_)
        if (c.stream == stream) s += c.data;
    return s;
}

// ---- records -----------------------------------------------------------------------------

ProcessRecord::ProcessRecord(net::any_io_executor ex)
    : ex_(ex), changed_(std::make_shared<Event>(ex)) {}

void ProcessRecord::append(int stream, std::string data) {
    log.append(stream, std::move(data));
    notify();
}

void ProcessRecord::notify() {
    auto ev = std::exchange(changed_, std::make_shared<Event>(ex_));
    ev->set();
}

void ProcessRecord::finish(std::optional<int> code) {
    exitCode = code;
    if (status == "running") {
        if (!code)
            status = "error";
        else if (*code == 0)
            status = "completed";
        else if (*code == 137 || *code == 143)
            status = "killed";
        else
            status = "failed";
    }
    endTime = core::isoTimestampNow();
    ended = true;
    auto ev = std::exchange(changed_, std::make_shared<Event>(ex_));
    ev->set();
}

awaitable<void> ProcessRecord::waitChange(std::chrono::steady_clock::time_point deadline) {
    auto ev = changed_;  // keep it alive across the wait
    co_await ev->waitUntil(deadline);
}

wire::ProcessInfo ProcessRecord::info() const {
    wire::ProcessInfo p;
    p.id = id;
    if (pid) p.pid = *pid;
    p.command = command;
    p.status = status;
    p.startTime = startTime;
    p.endTime = endTime;
    p.exitCode = exitCode;
    return p;
}

// ---- /proc: tree membership, signals, orphans --------------------------------------------

namespace {

// The value of kProcessTagVar in the process's environment ("" when absent or unreadable).
std::string tagOf(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/environ", pid);
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::string env;
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        env.append(buf, static_cast<size_t>(n));
        if (env.size() > (1u << 20)) break;
    }
    ::close(fd);
    // Entries are NUL-separated "K=V".
    const std::string key = std::string(kProcessTagVar) + "=";
    std::size_t pos = 0;
    while (pos < env.size()) {
        std::size_t end = env.find('\0', pos);
        if (end == std::string::npos) end = env.size();
        if (env.compare(pos, key.size(), key) == 0)
            return env.substr(pos + key.size(), end - pos - key.size());
        pos = end + 1;
    }
    return {};
}

bool isZombie(char state) {
    return state == 'Z' || state == 'X';
}

}  // namespace

std::vector<std::set<pid_t>> processTreesMembers(std::vector<TreeSpec>& trees) {
    std::vector<std::set<pid_t>> result(trees.size());
    if (trees.empty()) return result;
    auto table = readProcTable();
    const pid_t self = ::getpid();
    std::multimap<pid_t, pid_t> children, byGroup, bySession;
    for (const auto& [pid, st] : table) {
        children.emplace(st.ppid, pid);
        byGroup.emplace(st.pgid, pid);
        bySession.emplace(st.sid, pid);
    }
    std::multimap<std::string, std::size_t> byTag;
    for (std::size_t i = 0; i < trees.size(); ++i)
        if (!trees[i].tag.empty()) byTag.emplace(trees[i].tag, i);
    std::vector<std::vector<pid_t>> seeds(trees.size());
    for (std::size_t i = 0; i < trees.size(); ++i) {
        if (trees[i].root > 0) seeds[i].push_back(trees[i].root);
        for (const auto& [pid, start] : trees[i].known)
            if (auto it = table.find(pid); it != table.end() && it->second.start == start)
                seeds[i].push_back(pid);
    }
    if (!byTag.empty())
        for (const auto& [pid, st] : table) {
            if (pid == self || isZombie(st.state)) continue;
            std::string tag = tagOf(pid);  // one read per process, whatever the number of trees
            if (tag.empty()) continue;
            auto [b, e] = byTag.equal_range(tag);
            for (auto it = b; it != e; ++it) seeds[it->second].push_back(pid);
        }
    for (std::size_t i = 0; i < trees.size(); ++i) {
        auto& members = result[i];
        std::vector<pid_t> work;
        auto add = [&](pid_t p) {
            if (p <= 1 || p == self) return;
            auto it = table.find(p);
            if (it == table.end() || isZombie(it->second.state)) return;
            if (members.insert(p).second) work.push_back(p);
        };
        for (pid_t p : seeds[i]) add(p);
        while (!work.empty()) {
            pid_t p = work.back();
            work.pop_back();
            for (auto* m : {&children, &byGroup, &bySession}) {
                auto [b, e] = m->equal_range(p);
                for (auto it = b; it != e; ++it) add(it->second);
            }
        }
        for (pid_t p : members) trees[i].known[p] = table.at(p).start;
    }
    return result;
}

std::set<pid_t> processTreeMembers(pid_t root, const std::string& tag) {
    std::vector<TreeSpec> one{TreeSpec{root, tag, {}}};
    return processTreesMembers(one).front();
}

int signalProcessTrees(std::vector<TreeSpec>& trees, int sig) {
    auto members = [&trees] {
        std::vector<pid_t> all;
        for (const auto& tree : processTreesMembers(trees))
            all.insert(all.end(), tree.begin(), tree.end());
        return all;
    };
    return freezeThenSignal(members, {}, sig, 32);
}

int signalProcessTree(pid_t root, const std::string& tag, int sig) {
    std::vector<TreeSpec> one{TreeSpec{root, tag, {}}};
    return signalProcessTrees(one, sig);
}

void reapOrphans() {
    const pid_t self = ::getpid();
    for (const auto& [pid, st] : readProcTable())
        if (st.ppid == self && isZombie(st.state) && !isSpawnedChild(pid)) {
            int status = 0;
            ::waitpid(pid, &status, WNOHANG);
        }
}

void enableSubreaper(net::any_io_executor ex) {
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    auto signals = std::make_shared<net::signal_set>(ex, SIGCHLD);
    struct Loop {
        std::shared_ptr<net::signal_set> s;
        void operator()(const boost::system::error_code& ec, int) const {
            if (ec) return;
            reapOrphans();
            s->async_wait(*this);
        }
    };
    signals->async_wait(Loop{signals});
    reapOrphans();
}

// ---- the table ---------------------------------------------------------------------------

namespace {
// Records kept for listing; beyond this the oldest finished ones are forgotten (running ones
// never are), in batches so that the pruning cost is amortised.
constexpr std::size_t kMaxRecords = 1000;
constexpr std::size_t kPruneTo = 900;
}  // namespace

void ProcessTable::prune() {
    if (records_.size() <= kMaxRecords) return;
    std::vector<std::shared_ptr<ProcessRecord>> done;
    for (const auto& [id, rec] : records_)
        if (rec->ended) done.push_back(rec);
    std::sort(done.begin(), done.end(), [](const auto& a, const auto& b) {
        return a->endTime.value_or("") < b->endTime.value_or("");
    });
    for (const auto& rec : done) {
        if (records_.size() <= kPruneTo) break;
        records_.erase(rec->id);
    }
}

std::shared_ptr<ProcessRecord> ProcessTable::add(std::string command, std::string sessionId,
                                                 std::shared_ptr<RunningCommand> run,
                                                 std::optional<std::string> id, std::string tag) {
    auto rec = std::make_shared<ProcessRecord>(ex_);
    rec->id = id.value_or(newProcessId());
    rec->command = std::move(command);
    rec->sessionId = std::move(sessionId);
    rec->startTime = core::isoTimestampNow();
    if (run) rec->pid = run->pid();
    rec->run = std::move(run);
    rec->tag = std::move(tag);
    records_[rec->id] = rec;  // a finished record under this id is replaced
    prune();
    return rec;
}

std::shared_ptr<ProcessRecord> ProcessTable::get(const std::string& id) const {
    auto it = records_.find(id);
    return it == records_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<ProcessRecord>> ProcessTable::list() const {
    std::vector<std::shared_ptr<ProcessRecord>> running, done;
    for (const auto& [id, rec] : records_)
        (rec->status == "running" ? running : done).push_back(rec);
    auto byStart = [](const auto& a, const auto& b) { return a->startTime < b->startTime; };
    std::stable_sort(running.begin(), running.end(), byStart);
    std::stable_sort(done.begin(), done.end(), byStart);
    running.insert(running.end(), done.begin(), done.end());
    return running;
}

std::string ProcessTable::newTag(const std::string& id) {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    std::string t = std::to_string(::getpid()) + "-" + std::to_string(++tagCounter_) + "-" +
                    std::to_string(rng() % 1000000000ull);
    if (!id.empty() && id.size() <= 64) t += "-" + id;
    return t;
}

void ProcessTable::pump(std::shared_ptr<ProcessRecord> rec, std::chrono::milliseconds grace) {
    if (rec->timeoutMs && *rec->timeoutMs > 0) {
        auto timer = std::make_shared<net::steady_timer>(ex_);
        timer->expires_after(std::chrono::milliseconds(*rec->timeoutMs));
        timer->async_wait([this, rec, timer, grace](boost::system::error_code ec) {
            if (ec || rec->ended || rec->killing) return;
            rec->forcedExit = 124;
            net::co_spawn(ex_, kill(rec, grace, false), net::detached);
        });
    }
    net::co_spawn(
        ex_,
        [rec]() -> awaitable<void> {
            core::Utf8StreamDecoder decoders[2];
            OutputChunk chunk_;
            for (;;) {
                bool more = co_await rec->run->next(chunk_);
                if (!more) break;
                OutputChunk* chunk = &chunk_;
                if (chunk->kind == OutputChunk::Exit) {
                    for (int i = 0; i < 2; ++i)
                        if (auto rest = decoders[i].flush(); !rest.empty())
                            rec->append(i, std::move(rest));
                    // A kill in progress decides the exit code (143 or 137) once the whole
                    // tree is gone; the leader may die first.
                    while (rec->killing && !rec->forcedExit) {
                        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
                        co_await rec->waitChange(until);
                    }
                    std::optional<int> code = chunk->exitCode;
                    if (rec->forcedExit) code = rec->forcedExit;
                    if (code == 124 && rec->timeoutMs)
                        rec->append(1, "Command timed out after " +
                                           std::to_string(*rec->timeoutMs) + "ms\n");
                    rec->finish(code);
                    break;
                }
                int i = chunk->kind == OutputChunk::Stdout ? 0 : 1;
                std::string text = decoders[i].decode(chunk->data);
                if (!text.empty()) rec->append(i, std::move(text));
            }
            if (!rec->ended) rec->finish(rec->forcedExit);
        },
        net::detached);
}

namespace {
awaitable<void> pause(net::steady_timer& timer, std::chrono::milliseconds d) {
    boost::system::error_code ec;
    timer.expires_after(d);
    co_await timer.async_wait(net::redirect_error(use_awaitable, ec));
}
}  // namespace

awaitable<void> ProcessTable::kill(std::shared_ptr<ProcessRecord> rec,
                                   std::chrono::milliseconds grace, bool force) {
    std::vector<std::shared_ptr<ProcessRecord>> one{rec};
    co_await killMany(one, grace, force);
}

awaitable<void> ProcessTable::killMany(const std::vector<std::shared_ptr<ProcessRecord>>& recs,
                                       std::chrono::milliseconds grace, bool force) {
    const std::size_t n = recs.size();
    std::vector<TreeSpec> specs;
    for (const auto& rec : recs) {
        rec->killing = true;
        // The root pid is ours to address only while the command has not ended (after that it
        // may have been reaped and reused); the tag still finds what it left behind.
        specs.push_back(TreeSpec{rec->ended ? 0 : rec->pid.value_or(0), rec->tag, {}});
    }
    net::steady_timer timer(ex_);
    std::vector<bool> gone(n, false);
    auto allGone = [&] {
        auto sets = processTreesMembers(specs);
        bool all = true;
        for (std::size_t i = 0; i < n; ++i) {
            if (sets[i].empty()) gone[i] = true;
            all = all && gone[i];
        }
        return all;
    };
    if (!force) {
        signalProcessTrees(specs, SIGTERM);
        auto deadline = std::chrono::steady_clock::now() + grace;
        while (!allGone() && std::chrono::steady_clock::now() < deadline)
            co_await pause(timer, std::chrono::milliseconds(25));
    }
    std::vector<int> codes(n, 143);
    std::vector<TreeSpec> left;
    for (std::size_t i = 0; i < n; ++i)
        if (!gone[i]) {
            codes[i] = 137;
            left.push_back(specs[i]);
        }
    if (!left.empty()) {
        // Re-walk and kill until nothing is left (a member may fork while being frozen).
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        for (;;) {
            signalProcessTrees(left, SIGKILL);
            auto step = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
            bool empty = false;
            for (;;) {
                empty = true;
                for (const auto& m : processTreesMembers(left)) empty = empty && m.empty();
                if (empty || std::chrono::steady_clock::now() >= std::min(step, deadline)) break;
                co_await pause(timer, std::chrono::milliseconds(25));
            }
            if (empty || std::chrono::steady_clock::now() >= deadline) break;
        }
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (!recs[i]->forcedExit) recs[i]->forcedExit = codes[i];
        recs[i]->notify();
    }
    reapOrphans();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (const auto& rec : recs)
        while (!rec->ended && std::chrono::steady_clock::now() < deadline)
            co_await rec->waitChange(deadline);
}

void ProcessTable::killSessionNow(const std::string& sessionId) {
    std::vector<TreeSpec> trees;
    for (auto& [id, rec] : records_)
        if (!rec->ended && rec->sessionId == sessionId && !rec->tag.empty())
            trees.push_back(TreeSpec{rec->pid.value_or(0), rec->tag, {}});
    if (!trees.empty()) signalProcessTrees(trees, SIGKILL);
}

void ProcessTable::killAllNow() {
    std::vector<TreeSpec> trees;
    for (auto& [id, rec] : records_)
        if (!rec->ended) trees.push_back(TreeSpec{rec->pid.value_or(0), rec->tag, {}});
    if (!trees.empty()) signalProcessTrees(trees, SIGKILL);
}

}  // namespace sandbox::agent
