#include "agent/interpreter.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <cstdlib>
#include <random>

#include "agent/interpreter/executors.hpp"
#include "core/errors.hpp"
#include "core/shell.hpp"
#include "core/utf8.hpp"

namespace sandbox::agent {
namespace wire = core::wire;
using core::ApiError;
using nlohmann::json;
using wire::CodeLanguage;
using Clock = std::chrono::steady_clock;

namespace {

// A context id: a random UUID (version 4), as the reference's.
std::string newContextId() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uint64_t hi = rng(), lo = rng();
    hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                  static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xffffffffffffULL));
    return buf;
}

bool executable(const std::string& path) {
    return !path.empty() && ::access(path.c_str(), X_OK) == 0 && !isDirectory(path);
}

// The runtime of a language: the variable that names it, then the system's own (the sandbox
// image's Debian packages, matplotlib and pandas included, live there), then PATH.
std::optional<std::string> findRuntime(CodeLanguage language) {
    const bool python = language == CodeLanguage::Python;
    if (const char* v =
            std::getenv(python ? "SANDBOX_INTERPRETER_PYTHON" : "SANDBOX_INTERPRETER_NODE");
        v && *v)
        return executable(v) ? std::optional<std::string>(v) : std::nullopt;
    const std::vector<std::string> names =
        python ? std::vector<std::string>{"python3"} : std::vector<std::string>{"node", "nodejs"};
    for (const auto& n : names)
        if (executable("/usr/bin/" + n)) return "/usr/bin/" + n;
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    for (const auto& n : names) {
        std::size_t start = 0;
        while (start <= dirs.size()) {
            std::size_t end = dirs.find(':', start);
            if (end == std::string::npos) end = dirs.size();
            std::string dir = dirs.substr(start, end - start);
            if (!dir.empty() && executable(dir + "/" + n)) return dir + "/" + n;
            start = end + 1;
        }
    }
    return std::nullopt;
}

[[noreturn]] void notAvailable(CodeLanguage language) {
    if (language == CodeLanguage::Python)
        throw ApiError("PYTHON_NOT_AVAILABLE",
                       "Python interpreter not available: no python3 in /usr/bin or on PATH "
                       "(install the python3 package in the sandbox image, or set "
                       "SANDBOX_INTERPRETER_PYTHON)");
    throw ApiError("JAVASCRIPT_NOT_AVAILABLE",
                   "JavaScript runtime not available: no node in /usr/bin or on PATH (install "
                   "the nodejs package in the sandbox image, or set SANDBOX_INTERPRETER_NODE)");
}

// Up to `limit` bytes that can be read from `fd` now (O_NONBLOCK). `eof` is set at end of file.
std::size_t readNow(int fd, std::string& out, std::size_t limit, bool& eof) {
    std::size_t total = 0;
    char buf[65536];
    while (total < limit) {
        ssize_t n = ::read(fd, buf, std::min(sizeof buf, limit - total));
        if (n > 0) {
            out.append(buf, static_cast<std::size_t>(n));
            total += static_cast<std::size_t>(n);
            continue;
        }
        if (n == 0) eof = true;
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    return total;
}

}  // namespace

// ---- one executor process -----------------------------------------------------------------

class Executor : public std::enable_shared_from_this<Executor> {
  public:
    Executor(net::any_io_executor ex, CodeLanguage language)
        : language_(language),
          requests_(ex),
          events_(ex),
          out_(ex),
          err_(ex),
          exit_(ex),
          timer_(ex) {}
    ~Executor() { kill(); }

    CodeLanguage language() const noexcept { return language_; }
    bool dead() const noexcept { return dead_; }
    const std::string& deathReason() const noexcept { return deathReason_; }

    /// Spawns the executor of `language` (not yet ready: see waitReady()).
    static std::shared_ptr<Executor> spawn(net::any_io_executor ex, CodeLanguage language,
                                           const std::string& cwd) {
        auto runtime = findRuntime(language);
        if (!runtime) notAvailable(language);
        auto e = std::make_shared<Executor>(ex, language);
        Pipe req = Pipe::make(false), ev = Pipe::make(true), out = Pipe::make(true),
             err = Pipe::make(true);
        Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
        SpawnOptions o;
        if (language == CodeLanguage::Python)
            o.argv = {*runtime, "-u", "-c", std::string(interpreter::kPythonExecutor)};
        else
            o.argv = {*runtime, "-e", std::string(interpreter::kNodeExecutor), "--",
                      std::string(wire::to_string(language))};
        o.env = environWith({{"PYTHONUNBUFFERED", "1"},
                             {"NODE_NO_WARNINGS", "1"},
                             {"MPLBACKEND", "Agg"},
                             {"SANDBOX_API_KEY", std::nullopt}});
        o.cwd = cwd;
        o.fds = {{0, devnull.get()},
                 {1, out.write.get()},
                 {2, err.write.get()},
                 {3, req.read.get()},
                 {4, ev.write.get()}};
        o.newProcessGroup = true;
        try {
            e->pid_ = spawnProcess(o);
        } catch (const std::system_error& x) {
            throw ApiError("INTERNAL_ERROR",
                           std::string("Failed to create code context: cannot start ") + *runtime +
                               ": " + x.what());
        }
        e->requests_.assign(req.write.release());
        e->events_.assign(ev.read.release());
        e->out_.assign(out.read.release());
        e->err_.assign(err.read.release());
        e->exit_.assign(openPidFd(e->pid_).release());
        return e;
    }

    /// Waits for the ready line. False (and the executor killed) when it does not come in time
    /// or the executor exits; `why` then holds what it wrote to stderr.
    awaitable<bool> waitReady(std::chrono::milliseconds timeout, std::string& why) {
        auto deadline = Clock::now() + timeout;
        for (;;) {
            std::string line;
            while (takeLine(line)) {
                json j = json::parse(line, nullptr, false);
                if (j.is_object() && j.value("type", "") == "ready") co_return true;
            }
            if (eventsEof_ || exited() || Clock::now() >= deadline) break;
            co_await waitAny(deadline);
            bool eof = false;
            readNow(events_.native_handle(), evBuf_, 1 << 20, eventsEof_);
            std::string junk;
            readNow(out_.native_handle(), junk, 1 << 20, eof);
            readNow(err_.native_handle(), startErr_, 1 << 16, eof);
        }
        why = core::sanitizeUtf8(startErr_.substr(0, 2000));
        if (why.empty()) why = exited() ? "the executor exited" : "no ready line in time";
        kill();
        co_return false;
    }

    /// Applies a context's cwd and environment. Throws ApiError when the executor refuses.
    awaitable<void> setup(const std::string& cwd, const std::map<std::string, std::string>& env) {
        json req = {{"op", "setup"}, {"cwd", cwd}, {"env", env}};
        std::optional<std::string> error;
        bool ok = co_await request(req, [&](const json& ev) -> awaitable<void> {
            if (ev.value("type", "") == "error") error = ev.value("evalue", "setup failed");
            co_return;
        });
        if (!ok) throw ApiError("INTERNAL_ERROR", "Failed to create code context: " + deathReason_);
        if (error) throw ApiError("INTERNAL_ERROR", "Failed to create code context: " + *error);
    }

    /// One run (see InterpreterService::run).
    awaitable<void> runCode(const std::string& code,
                            std::optional<std::chrono::milliseconds> timeout,
                            std::chrono::milliseconds grace, const CodeEventSink& sink) {
        enum class Phase { Running, Interrupted, TimedOut } phase = Phase::Running;
        bool reading = true;  // the client still reads
        core::Utf8StreamDecoder decoders[2];
        auto emit = [&](std::string&& ev) -> awaitable<void> {
            if (!reading) co_return;
            if (!co_await sink(std::move(ev))) {
                reading = false;
                if (phase == Phase::Running) {
                    phase = Phase::Interrupted;
                    interrupt();
                    deadline_ = Clock::now() + grace;
                }
            }
        };
        auto emitOutput = [&](int which, std::string_view bytes) -> awaitable<void> {
            std::string text = decoders[which].decode(bytes);
            if (!text.empty())
                co_await emit(wire::code_event::output(which == 0 ? "stdout" : "stderr", text));
        };
        // What the executor wrote to stdout and stderr: up to `limit` bytes of each, or (kNow)
        // what each pipe holds at this moment: all that was written before an event just read,
        // and never an endless amount from a program that goes on printing meanwhile.
        constexpr std::size_t kNow = SIZE_MAX;
        auto drain = [&](std::size_t limit) -> awaitable<void> {
            for (int which = 0; which < 2; ++which) {
                auto& d = which == 0 ? out_ : err_;
                bool& eof = which == 0 ? outEof_ : errEof_;
                std::size_t left = limit;
                if (limit == kNow) {
                    int n = 0;
                    left = ::ioctl(d.native_handle(), FIONREAD, &n) == 0 && n > 0
                               ? static_cast<std::size_t>(n)
                               : 0;
                }
                while (!eof && left > 0) {
                    std::string chunk;
                    if (readNow(d.native_handle(), chunk, std::min<std::size_t>(left, 65536),
                                eof) == 0)
                        break;
                    left -= std::min(left, chunk.size());
                    co_await emitOutput(which, chunk);
                }
            }
        };

        deadline_ = timeout ? Clock::now() + *timeout : Clock::time_point::max();
        json req = {{"op", "run"}, {"code", code}};
        if (!co_await writeLine(req.dump(-1, ' ', false, json::error_handler_t::replace))) {
            co_await drain(1 << 20);
            co_await emit(diedEvent());
            co_return;
        }
        for (;;) {
            std::string line;
            bool done = false;
            while (!done && takeLine(line)) {
                co_await drain(kNow);  // what was printed before this event comes first
                json ev = json::parse(line, nullptr, false);
                if (!ev.is_object()) continue;
                std::string type = ev.value("type", "");
                if (type == "result") {
                    co_await emit(wire::code_event::result(ev));
                } else if (type == "error") {
                    std::vector<std::string> tb;
                    if (auto t = ev.find("traceback"); t != ev.end() && t->is_array())
                        for (const auto& l : *t)
                            if (l.is_string()) tb.push_back(l.get<std::string>());
                    co_await emit(wire::code_event::error(ev.value("ename", "Error"),
                                                          ev.value("evalue", ""), tb));
                } else if (type == "done") {
                    for (int i = 0; i < 2; ++i)
                        if (auto rest = decoders[i].flush(); !rest.empty())
                            co_await emit(
                                wire::code_event::output(i == 0 ? "stdout" : "stderr", rest));
                    co_await emit(wire::code_event::complete(ev.value("execution_count", 0)));
                    done = true;
                }
            }
            if (done) co_return;
            co_await drain(1 << 20);
            if (eventsEof_ || exited()) {
                co_await drain(kNow);
                markDead();
                co_await emit(diedEvent());
                co_return;
            }
            if (Clock::now() >= deadline_) {
                if (phase == Phase::Running && timeout) {
                    phase = Phase::TimedOut;
                    co_await emit(wire::code_event::output(
                        "stderr",
                        "Execution timed out after " + std::to_string(timeout->count()) + "ms\n"));
                    interrupt();
                    deadline_ = Clock::now() + grace;
                } else {
                    // The interrupt did not end the run: the executor is killed, its state lost.
                    kill();
                    deathReason_ = "the run did not stop when interrupted; its executor was killed";
                    co_await emit(diedEvent());
                    co_return;
                }
            }
            co_await emit(std::string());  // what is held goes out before the wait
            co_await waitAny(deadline_);
            readNow(events_.native_handle(), evBuf_, 1 << 20, eventsEof_);
        }
    }

    void interrupt() {
        if (pid_ > 0 && !dead_) ::kill(pid_, SIGINT);
    }

    /// Kills the executor and everything it started, and reaps it.
    void kill() {
        if (pid_ > 0) {
            signalTree(pid_, SIGKILL, true);
            ::kill(-pid_, SIGKILL);  // its process group (what it started and left behind)
            int status = 0;
            while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
            }
            forgetChild(pid_);
            pid_ = -1;
        }
        if (!dead_) {
            dead_ = true;
            if (deathReason_.empty()) deathReason_ = "the executor was stopped";
        }
        boost::system::error_code ec;
        requests_.close(ec);
        events_.close(ec);
        out_.close(ec);
        err_.close(ec);
        exit_.close(ec);
        timer_.cancel();
    }

  private:
    // Sends a request and hands each event to `onEvent` until `done`. False when the executor
    // died first.
    template <class F>
    awaitable<bool> request(const json& req, F onEvent) {
        if (!co_await writeLine(req.dump(-1, ' ', false, json::error_handler_t::replace)))
            co_return false;
        deadline_ = Clock::now() + std::chrono::seconds(30);
        for (;;) {
            std::string line;
            while (takeLine(line)) {
                json ev = json::parse(line, nullptr, false);
                if (!ev.is_object()) continue;
                if (ev.value("type", "") == "done") co_return true;
                co_await onEvent(ev);
            }
            std::string junk;
            bool eof = false;
            readNow(out_.native_handle(), junk, 1 << 20, eof);
            readNow(err_.native_handle(), junk, 1 << 20, eof);
            if (eventsEof_ || exited() || Clock::now() >= deadline_) {
                markDead();
                kill();
                co_return false;
            }
            co_await waitAny(deadline_);
            readNow(events_.native_handle(), evBuf_, 1 << 20, eventsEof_);
        }
    }

    awaitable<bool> writeLine(std::string line) {
        if (dead_) co_return false;
        line.push_back('\n');
        boost::system::error_code ec;
        co_await net::async_write(requests_, net::buffer(line),
                                  net::redirect_error(use_awaitable, ec));
        if (ec) markDead();
        co_return !ec;
    }

    bool takeLine(std::string& line) {
        auto nl = evBuf_.find('\n', evScanned_);
        if (nl == std::string::npos) {
            evScanned_ = evBuf_.size();
            return false;
        }
        line.assign(evBuf_, 0, nl);
        evBuf_.erase(0, nl + 1);
        evScanned_ = 0;
        return true;
    }

    // Whether the process has exited (its pidfd is readable).
    bool exited() const {
        if (pid_ <= 0) return true;
        pollfd p{const_cast<net::posix::stream_descriptor&>(exit_).native_handle(), POLLIN, 0};
        return ::poll(&p, 1, 0) == 1;
    }

    void markDead() {
        if (dead_) return;
        if (pid_ > 0) {
            // Its events pipe closes a moment before the process can be reaped: give it that
            // moment (bounded: an executor that closed the pipe and lives on is killed below).
            pollfd p{exit_.native_handle(), POLLIN, 0};
            ::poll(&p, 1, 1000);
        }
        if (pid_ > 0 && exited()) {
            int status = 0;
            if (::waitpid(pid_, &status, 0) == pid_) {
                forgetChild(pid_);
                pid_ = -1;
                if (WIFEXITED(status))
                    deathReason_ =
                        "its executor exited with status " + std::to_string(WEXITSTATUS(status));
                else if (WIFSIGNALED(status))
                    deathReason_ =
                        "its executor was killed by signal " + std::to_string(WTERMSIG(status));
            }
        }
        if (deathReason_.empty()) deathReason_ = "its executor stopped answering";
        kill();
    }

    std::string diedEvent() {
        return wire::code_event::error("ExecutorTerminated",
                                       "The context's state is lost: " + deathReason_ +
                                           ". Delete the context and create a new one.",
                                       {});
    }

    // Until a pipe can be read, the process exits, or `deadline`.
    awaitable<void> waitAny(Clock::time_point deadline) {
        using namespace net::experimental::awaitable_operators;
        auto readable = [](net::posix::stream_descriptor& d, bool closed) -> awaitable<void> {
            boost::system::error_code ec;
            if (closed) {
                net::steady_timer never(d.get_executor(), Clock::time_point::max());
                co_await never.async_wait(net::redirect_error(use_awaitable, ec));
            } else {
                co_await d.async_wait(net::posix::descriptor_base::wait_read,
                                      net::redirect_error(use_awaitable, ec));
            }
        };
        timer_.expires_at(deadline);
        auto expiry = [this]() -> awaitable<void> {
            boost::system::error_code ec;
            co_await timer_.async_wait(net::redirect_error(use_awaitable, ec));
        };
        co_await (readable(events_, eventsEof_) || readable(out_, outEof_) ||
                  readable(err_, errEof_) || readable(exit_, false) || expiry());
    }

    CodeLanguage language_;
    pid_t pid_ = -1;
    net::posix::stream_descriptor requests_, events_, out_, err_, exit_;
    net::steady_timer timer_;
    Clock::time_point deadline_ = Clock::time_point::max();
    std::string evBuf_, startErr_, deathReason_;
    std::size_t evScanned_ = 0;
    bool dead_ = false, eventsEof_ = false, outEof_ = false, errEof_ = false;
};

// ---- contexts -------------------------------------------------------------------------------

wire::ContextInfo CodeContext::info() const {
    return {id, std::string(wire::to_string(language)), cwd};
}

bool CodeContext::executorDead() const {
    return !executor || executor->dead();
}

InterpreterService::InterpreterService(net::any_io_executor ex, InterpreterConfig cfg)
    : ex_(std::move(ex)), cfg_(std::move(cfg)) {}

InterpreterService::~InterpreterService() {
    shutdown();
}

awaitable<std::shared_ptr<Executor>> InterpreterService::takeOrStart(
    CodeLanguage language, std::chrono::milliseconds timeout) {
    auto& spares = pool_[language];
    while (!spares.empty()) {
        auto e = spares.front();
        spares.pop_front();
        if (!e->dead()) co_return e;
    }
    auto e = Executor::spawn(ex_, language, cfg_.workspace);
    std::string why;
    if (!co_await e->waitReady(timeout, why))
        throw ApiError("INTERNAL_ERROR", "Failed to create code context: the " +
                                             std::string(wire::to_string(language)) +
                                             " executor did not start: " + why);
    co_return e;
}

void InterpreterService::refill(CodeLanguage language) {
    if (stopped_ || cfg_.poolSize <= 0) return;
    int have = static_cast<int>(pool_[language].size()) + starting_[language];
    for (; have < cfg_.poolSize; ++have) {
        ++starting_[language];
        net::co_spawn(
            ex_,
            [this, language, alive = std::weak_ptr<int>(life_)]() -> awaitable<void> {
                std::shared_ptr<Executor> e;
                try {
                    e = Executor::spawn(ex_, language, cfg_.workspace);
                } catch (const std::exception&) {
                }
                std::string why;
                bool ok = e && co_await e->waitReady(cfg_.spawnTimeout, why);
                if (alive.expired()) co_return;  // the service is gone (e kills itself)
                --starting_[language];
                if (ok && !stopped_ && static_cast<int>(pool_[language].size()) < cfg_.poolSize)
                    pool_[language].push_back(std::move(e));
            },
            net::detached);
    }
}

awaitable<std::shared_ptr<CodeContext>> InterpreterService::create(
    CodeLanguage language, std::optional<std::string> cwd,
    const std::map<std::string, std::string>& env, std::optional<std::string> sessionId,
    std::optional<std::chrono::milliseconds> startTimeout) {
    if (stopped_) throw ApiError("INTERNAL_ERROR", "The interpreter is shutting down");
    if (!findRuntime(language)) notAvailable(language);
    std::string dir = cwd && !cwd->empty() ? *cwd : cfg_.workspace;
    if (dir.front() != '/') dir = cfg_.workspace + "/" + dir;
    // "/workspace" is the clients' default (the TypeScript client always sends it): an agent
    // serving another directory as its workspace (--workspace) takes it to mean that one.
    if (dir == "/workspace" && !isDirectory(dir)) dir = cfg_.workspace;
    if (!isDirectory(dir))
        throw core::validationError("Validation failed: cwd " + dir + " is not a directory", "cwd",
                                    "INVALID_CWD", "not an existing directory");
    for (const auto& [k, v] : env)
        if (!core::isValidEnvName(k))
            throw core::validationError("Validation failed: invalid environment variable name " + k,
                                        "env_vars", "INVALID_ENV_NAME",
                                        "invalid environment variable name: " + k);

    auto e = co_await takeOrStart(language, startTimeout.value_or(cfg_.spawnTimeout));
    // The pool refills behind this request, not in its way: starting an executor costs tens of
    // milliseconds of CPU that the answer (and the first run) would compete with.
    auto timer = std::make_shared<net::steady_timer>(ex_, std::chrono::milliseconds(20));
    timer->async_wait(
        [this, timer, language, alive = std::weak_ptr<int>(life_)](boost::system::error_code) {
            if (!alive.expired()) refill(language);
        });
    co_await e->setup(dir, env);
    auto ctx = std::make_shared<CodeContext>();
    ctx->id = newContextId();
    ctx->language = language;
    ctx->cwd = dir;
    ctx->sessionId = std::move(sessionId);
    ctx->executor = std::move(e);
    ctx->runLock = std::make_shared<AsyncMutex>(ex_);
    if (stopped_) throw ApiError("INTERNAL_ERROR", "The interpreter is shutting down");
    contexts_[ctx->id] = ctx;
    order_.push_back(ctx->id);
    co_return ctx;
}

std::vector<std::shared_ptr<CodeContext>> InterpreterService::list() const {
    std::vector<std::shared_ptr<CodeContext>> out;
    for (const auto& id : order_)
        if (auto it = contexts_.find(id); it != contexts_.end()) out.push_back(it->second);
    return out;
}

std::shared_ptr<CodeContext> InterpreterService::find(const std::string& id) const {
    auto it = contexts_.find(id);
    return it == contexts_.end() ? nullptr : it->second;
}

bool InterpreterService::remove(const std::string& id) {
    auto it = contexts_.find(id);
    if (it == contexts_.end()) return false;
    auto ctx = it->second;
    contexts_.erase(it);
    order_.erase(std::remove(order_.begin(), order_.end(), id), order_.end());
    ctx->deleted = true;
    if (ctx->executor) ctx->executor->kill();  // a run in progress ends with an error event
    return true;
}

void InterpreterService::removeSession(const std::string& sessionId) {
    std::vector<std::string> ids;
    for (const auto& [id, ctx] : contexts_)
        if (ctx->sessionId == sessionId) ids.push_back(id);
    for (const auto& id : ids) remove(id);
}

awaitable<void> InterpreterService::run(std::shared_ptr<CodeContext> ctx, std::string code,
                                        std::optional<std::chrono::milliseconds> timeout,
                                        CodeEventSink sink) {
    auto lock = co_await LockGuard::acquire(*ctx->runLock);
    auto e = ctx->executor;
    if (ctx->deleted || !e || e->dead()) {
        std::string why = ctx->deleted ? std::string("the context was deleted")
                                       : (e ? e->deathReason() : std::string("no executor"));
        co_await sink(wire::code_event::error(
            "ExecutorTerminated",
            "The context's state is lost: " + why + ". Delete the context and create a new one.",
            {}));
        co_return;
    }
    co_await e->runCode(code, timeout, cfg_.interruptGrace, sink);
}

void InterpreterService::shutdown() {
    stopped_ = true;
    for (auto& [id, ctx] : contexts_)
        if (ctx->executor) ctx->executor->kill();
    contexts_.clear();
    order_.clear();
    for (auto& [lang, spares] : pool_)
        for (auto& e : spares) e->kill();
    pool_.clear();
}

}  // namespace sandbox::agent
