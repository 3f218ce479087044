#pragma once
// The code interpreter: code contexts, each a persistent executor process of its own (Python on
// python3, JavaScript and TypeScript on Node) running inside the sandbox like any command. The
// executors' programs (interpreter/*.py, *.js) are compiled into the agent and speak a line
// protocol on fds 3 (requests) and 4 (events); the user's stdout and stderr are the process's
// own fds 1 and 2, read here as they come (interpreter/README.md). Knows nothing of HTTP:
// interpreter_routes.cpp maps the routes onto this.
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/base.hpp"
#include "core/wire_interpreter.hpp"

namespace sandbox::agent {

class Executor;

/// The interpreter's settings (agent flags and environment).
struct InterpreterConfig {
    std::string workspace = "/workspace";  ///< a context's cwd unless it names one
    /// Executors kept started per language once that language has been used (0: none).
    int poolSize = 1;
    /// How long an executor may take to say it is ready.
    std::chrono::milliseconds spawnTimeout{30000};
    /// After an interrupt (a timeout, a client gone), how long the run has to end before the
    /// executor is killed.
    std::chrono::milliseconds interruptGrace{2000};
};

/// One code context: its executor and what it was created with.
struct CodeContext {
    std::string id;
    core::wire::CodeLanguage language = core::wire::CodeLanguage::Python;
    std::string cwd;
    std::optional<std::string> sessionId;  ///< the session it dies with, if any
    std::shared_ptr<Executor> executor;
    std::shared_ptr<AsyncMutex> runLock;  ///< runs on one context queue in arrival order
    bool deleted = false;

    core::wire::ContextInfo info() const;
    /// Whether its executor has died (a run would only report that).
    bool executorDead() const;
};

/// What a run reports, event by event (single-line JSON of core::wire::code_event), or, with
/// an empty string, "send what you hold now" (said before the run waits for its executor, so
/// events go out as they happen and a quick run's events go out together). Returns false when
/// nobody reads any more (the run is then interrupted, and drained to its end).
using CodeEventSink = std::function<awaitable<bool>(std::string&& eventJson)>;

class InterpreterService {
  public:
    InterpreterService(net::any_io_executor ex, InterpreterConfig cfg);
    ~InterpreterService();
    InterpreterService(const InterpreterService&) = delete;
    InterpreterService& operator=(const InterpreterService&) = delete;

    /// A new context with its own executor (taken from the pool when one is ready), its cwd and
    /// environment applied. Throws core::ApiError: 501 PYTHON_NOT_AVAILABLE /
    /// JAVASCRIPT_NOT_AVAILABLE when the runtime is not installed, 400 VALIDATION_FAILED for a
    /// cwd that is not a directory or a bad variable name, 500 INTERNAL_ERROR when the executor
    /// does not start (within `startTimeout`, default InterpreterConfig::spawnTimeout).
    awaitable<std::shared_ptr<CodeContext>> create(
        core::wire::CodeLanguage language, std::optional<std::string> cwd,
        const std::map<std::string, std::string>& env, std::optional<std::string> sessionId,
        std::optional<std::chrono::milliseconds> startTimeout = std::nullopt);
    /// The contexts, in creation order.
    std::vector<std::shared_ptr<CodeContext>> list() const;
    /// The context, or null.
    std::shared_ptr<CodeContext> find(const std::string& id) const;
    /// Deletes a context, killing its executor (and whatever it started). False if unknown.
    bool remove(const std::string& id);
    /// Deletes every context created in session `sessionId`.
    void removeSession(const std::string& sessionId);

    /// Runs `code` on `ctx` after the runs queued before it, reporting each event to `sink` as
    /// it happens: stdout/stderr text, results, an error, and last `execution_complete` (or an
    /// `error` saying the executor died). `timeout` interrupts the run (KeyboardInterrupt in
    /// Python) and the context stays usable. Throws core::ApiError 500 INTERNAL_ERROR before
    /// any event when the context's executor has already died.
    awaitable<void> run(std::shared_ptr<CodeContext> ctx, std::string code,
                        std::optional<std::chrono::milliseconds> timeout, CodeEventSink sink);

    /// Kills every executor (agent shutdown).
    void shutdown();

  private:
    awaitable<std::shared_ptr<Executor>> takeOrStart(core::wire::CodeLanguage language,
                                                     std::chrono::milliseconds timeout);
    void refill(core::wire::CodeLanguage language);

    net::any_io_executor ex_;
    InterpreterConfig cfg_;
    std::map<std::string, std::shared_ptr<CodeContext>> contexts_;
    std::vector<std::string> order_;
    std::map<core::wire::CodeLanguage, std::deque<std::shared_ptr<Executor>>> pool_;
    std::map<core::wire::CodeLanguage, int> starting_;  ///< refills under way
    bool stopped_ = false;
    std::shared_ptr<int> life_ = std::make_shared<int>(0);  ///< background work checks it
};

}  // namespace sandbox::agent
