#include "agent/agent.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <random>
#include <set>

#include "agent/watch.hpp"
#include "core/errors.hpp"
#include "core/shell.hpp"
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

void checkEnv(const core::wire::EnvMap& env) {
    for (const auto& [k, v] : env) {
        if (!core::isValidEnvName(k))
            throw core::validationError("Invalid environment variable name: " + k, "env",
                                        "INVALID_ENV_NAME", "invalid variable name '" + k + "'");
        if (k.rfind("__sb_", 0) == 0 || k == kProcessTagVar)
            throw core::validationError("Reserved environment variable name: " + k, "env",
                                        "INVALID_ENV_NAME", "'" + k + "' is reserved by the agent");
    }
}

std::string newProcessId() {
    return "proc_" + std::to_string(core::epochMillisNow()) + "_" +
           randomChars("0123456789abcdefghijklmnopqrstuvwxyz", 6);
}

std::string newSessionId() {
    return "session_" + std::to_string(core::epochMillisNow()) + "_" +
           randomChars("0123456789abcdef", 12);
}

Agent::Agent(net::any_io_executor ex, AgentConfig cfg)
    : ex_(ex),
      cfg_(std::move(cfg)),
      procs_(ex),
      interpreter_(std::make_unique<InterpreterService>(
          ex, InterpreterConfig{.workspace = cfg_.workspace, .poolSize = cfg_.interpreterPool})),
      watches_(std::make_unique<WatchService>(ex, cfg_.workspace)) {
    // The first sessionless command finds a bash ready.
    refillPosted_ = true;
    net::post(ex_, [this, alive = std::weak_ptr<int>(life_)] {
        if (alive.lock()) refillSpare();
    });
}

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
                       req.commandTimeoutMs ? req.commandTimeoutMs : cfg_.defaultCommandTimeoutMs,
                       cfg_.runtimeDir};
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

namespace {

// Variables bash reads while starting (or keeps read-only): a command that sets one needs a
// bash started with it, not a spare that exports it afterwards.
bool startupVariable(const std::string& k) {
    static const std::set<std::string> names = {"SHELLOPTS", "BASHOPTS", "ENV",  "POSIXLY_CORRECT",
                                                "EUID",      "UID",      "PPID", "SHLVL",
                                                "IFS",       "PS4",      "PWD",  "OLDPWD"};
    return k.rfind("BASH", 0) == 0 || names.count(k) > 0;
}

// The spare reads its text from fd 60 in one go (`$(< file)` reads in bulk; `read` would take
// a byte per system call), once the agent closes its end, then evals it: messages and `$LINENO`
// read as they do under `bash -c`.
constexpr const char* kSpareDriver =
    "__sb_c=$(< /proc/self/fd/60); exec 60<&-; eval \"unset __sb_c; $__sb_c\"";

// What `bash -c` would exec in place of itself: one simple command naming an external program
// found on `path` or relative to `cwd` (no list, pipe, redirection, subshell, assignment or
// expansion in the first word; not a builtin or keyword). The spare is told `exec` for exactly
// those, so the program takes the shell's pid as it would under `bash -c`. Unsure cases answer
// false (forked).
bool execsInPlace(std::string_view c, const std::string& path, const std::string& cwd) {
    static const std::set<std::string, std::less<>> shellWords = {
        "!",       "[",        "[[",       "]]",        "{",        "}",       ".",       ":",
        "alias",   "bg",       "bind",     "break",     "builtin",  "caller",  "case",    "cd",
        "command", "compgen",  "complete", "compopt",   "continue", "coproc",  "declare", "dirs",
        "disown",  "do",       "done",     "echo",      "elif",     "else",    "enable",  "esac",
        "eval",    "exec",     "exit",     "export",    "false",    "fc",      "fg",      "fi",
        "for",     "function", "getopts",  "hash",      "help",     "history", "if",      "in",
        "jobs",    "kill",     "let",      "local",     "logout",   "mapfile", "popd",    "printf",
        "pushd",   "pwd",      "read",     "readarray", "readonly", "return",  "select",  "set",
        "shift",   "shopt",    "source",   "suspend",   "test",     "then",    "time",    "times",
        "trap",    "true",     "type",     "typeset",   "ulimit",   "umask",   "unalias", "unset",
        "until",   "wait",     "while"};
    std::size_t i = 0, n = c.size();
    while (i < n && (c[i] == ' ' || c[i] == '\t')) ++i;
    const std::size_t start = i;
    while (i < n && (std::isalnum(static_cast<unsigned char>(c[i])) ||
                     std::string_view("_./+-,@%:").find(c[i]) != std::string_view::npos))
        ++i;
    const std::string_view first = c.substr(start, i - start);
    if (first.empty() || (i < n && c[i] != ' ' && c[i] != '\t') || shellWords.count(first))
        return false;
    bool single = false, dbl = false;
    for (; i < n; ++i) {
        const char ch = c[i];
        if (single) {
            single = ch != '\'';
            continue;
        }
        if (dbl) {
            if (ch == '\\')
                ++i;
            else if (ch == '"')
                dbl = false;
            else if (ch == '`')
                return false;
            continue;
        }
        switch (ch) {
            case '\\':
                ++i;
                break;
            case '\'':
                single = true;
                break;
            case '"':
                dbl = true;
                break;
            case '#':
                if (c[i - 1] == ' ' || c[i - 1] == '\t') return false;
                break;
            case ';':
            case '&':
            case '|':
            case '<':
            case '>':
            case '(':
            case ')':
            case '`':
            case '\n':
            case '\r':
                return false;
            default:
                break;
        }
    }
    if (single || dbl) return false;
    // Found as bash would find it: a path as given, a name on PATH.
    auto runnable = [](const std::string& p) {
        struct stat st {};
        return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
    };
    const std::string name(first);
    if (name.find('/') != std::string::npos)
        return runnable(name.front() == '/' ? name : cwd + "/" + name);
    std::size_t from = 0;
    for (;;) {
        std::size_t colon = path.find(':', from);
        std::string dir = path.substr(from, colon == std::string::npos ? colon : colon - from);
        if (!dir.empty() && dir.front() == '/' && runnable(dir + "/" + name)) return true;
        if (colon == std::string::npos) return false;
        from = colon + 1;
    }
}

std::string environPath() {
    const char* p = std::getenv("PATH");
    // bash's default when PATH is unset.
    return p ? p : "/usr/local/bin:/usr/local/sbin:/usr/bin:/usr/sbin:/bin:/sbin:.";
}

// Larger texts do not fit the pipe in one non-blocking write; they go through `bash -c`.
constexpr std::size_t kSpareMaxText = 48 * 1024;

}  // namespace

std::optional<Agent::SpareShell> Agent::takeSpare() {
    if (!spare_) return std::nullopt;
    SpareShell s = std::move(*spare_);
    spare_.reset();
    // It may have died waiting, be about to, or be stopped: a command may signal every process
    // of the sandbox but its init, the agent (`kill -9 -1`, `kill -STOP -1`). Do without.
    pollfd p{s.pidfd.get(), POLLIN, 0};
    if (::poll(&p, 1, 0) != 0 || !os::isRunnable(s.pid)) {
        discardSpare(s);
        return std::nullopt;
    }
    return s;
}

void Agent::refillSpare() {
    refillPosted_ = false;
    if (spare_ || stopped_) return;
    try {
        SpareShell s;
        Pipe commands = Pipe::make(false), out = Pipe::make(), err = Pipe::make();
        Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        SpawnOptions so;
        so.argv = {"/bin/bash", "-c", kSpareDriver};
        so.env = environWith({});
        so.cwd = cfg_.workspace;
        so.fds = {{0, devnull.get()},
                  {1, out.write.get()},
                  {2, err.write.get()},
                  {60, commands.read.get()}};
        s.pid = spawnProcess(so);
        s.pidfd = openPidFd(s.pid);
        s.commands = std::move(commands.write);
        s.out = std::move(out.read);
        s.err = std::move(err.read);
        spare_ = std::move(s);
    } catch (const std::exception&) {
        // No spare (no workspace yet, out of processes): commands are spawned directly.
    }
}

void Agent::discardSpare(const SpareShell& s) {
    ::kill(s.pid, SIGKILL);
    int status = 0;
    ::waitpid(s.pid, &status, 0);
    forgetChild(s.pid);
}

void Agent::dropSpare() {
    if (spare_) discardSpare(*spare_);
    spare_.reset();
}

std::shared_ptr<RunningCommand> Agent::spawnSessionless(const CommandSpec& given, bool useSpare) {
    CommandSpec spec = given;
    std::string tag;
    if (auto it = spec.env.find(kProcessTagVar); it != spec.env.end() && it->second) {
        tag = *it->second;
    } else {
        tag = procs_.newTag("");
        spec.env[kProcessTagVar] = tag;
    }
    const std::string cwd = spec.cwd.value_or(cfg_.workspace);
    auto launched = [&](pid_t pid, Fd out, Fd err, Fd pidfd) {
        auto rc =
            std::make_shared<RunningCommand>(ex_, pid, std::move(out), std::move(err),
                                             std::move(pidfd), RunningCommand::ExitSource::PidFd);
        rc->setTag(tag);
        rc->start();
        return rc;
    };

    bool viaSpare = useSpare && spare_.has_value();
    for (const auto& [k, v] : spec.env)
        if (v && startupVariable(k)) viaSpare = false;
    std::string text;  // for the spare: cd, export, then the command on the same line
    if (viaSpare) {
        // Always cd (the workspace may have been replaced since the spare started); `cd` sets
        // OLDPWD, which a bash started in `cwd` would not have: put it back.
        text = "__sb_o=${OLDPWD-__sb_unset}; builtin cd -- " + core::shellQuote(cwd) +
               " || exit 1; if [ \"$__sb_o\" = __sb_unset ]; then unset OLDPWD; else "
               "OLDPWD=$__sb_o; fi; unset __sb_o; ";
        for (const auto& [k, v] : spec.env)
            if (v) text += "export " + k + "=" + core::shellQuote(*v) + "; ";
        std::optional<std::string> path;
        if (auto it = spec.env.find("PATH"); it != spec.env.end()) path = it->second;
        if (execsInPlace(spec.command, path ? *path : environPath(), cwd)) text += "exec ";
        text += spec.command;
        viaSpare = text.size() <= kSpareMaxText;
    }
    std::optional<SpareShell> spare;
    if (viaSpare) spare = takeSpare();
    if (!spare_ && !refillPosted_ && !stopped_) {
        // Off the request's path: the command is running by the time the next bash starts.
        refillPosted_ = true;
        net::post(ex_, [this, alive = std::weak_ptr<int>(life_)] {
            if (alive.lock()) refillSpare();
        });
    }
    if (spare) {
        ssize_t n = ::write(spare->commands.get(), text.data(), text.size());
        if (n == static_cast<ssize_t>(text.size())) {
            spare->commands.reset();  // end of file: it reads the text and runs it
            return launched(spare->pid, std::move(spare->out), std::move(spare->err),
                            std::move(spare->pidfd));
        }
        discardSpare(*spare);  // not written whole (it died meanwhile): start one directly
    }

    Pipe out = Pipe::make(), err = Pipe::make();
    Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    std::vector<std::pair<std::string, std::optional<std::string>>> overrides;
    for (const auto& [k, v] : spec.env)
        if (v) overrides.emplace_back(k, *v);
    SpawnOptions so;
    so.argv = {"/bin/bash", "-c", spec.command};
    so.env = environWith(overrides);
    so.cwd = cwd;
    so.fds = {{0, devnull.get()}, {1, out.write.get()}, {2, err.write.get()}};
    pid_t pid = spawnProcess(so);
    return launched(pid, std::move(out.read), std::move(err.read), openPidFd(pid));
}

void Agent::shutdown() {
    stopped_ = true;
    interpreter_->shutdown();
    dropSpare();
    procs_.killAllNow();
    for (auto& [id, s] : sessions_) s->destroy();
    sessions_.clear();
    sessionOrder_.clear();
}

}  // namespace sandbox::agent
