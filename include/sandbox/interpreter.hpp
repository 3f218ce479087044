#pragma once
/// @file
/// The code interpreter's types: contexts (a Python, JavaScript or TypeScript interpreter
/// whose variables, imports and functions persist between runs), the options of runCode() and
/// runCodeStream(), and their results with rich output (text, HTML, PNG, JSON, ...). The
/// methods are on Sandbox and ExecutionSession (sandbox/client.hpp); docs/interpreter.md is the
/// guide.
///
/// ```cpp
/// auto ctx = sb.createCodeContext({.language = "python"});
/// sb.runCode("import math; radius = 5", {.context = ctx});
/// auto r = sb.runCode("math.pi * radius ** 2", {.context = ctx});
/// std::cout << r.results[0].text.value_or("");   // 78.53981633974483
/// ```
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/pull_iterator.hpp"

namespace sandbox {

namespace detail {
class CodeEventReader;
}

/// A code context: an interpreter of its own in the sandbox (createCodeContext()). Pass it
/// back as RunCodeOptions::context.
struct CodeContext {
    std::string id;
    std::string language;  ///< "python", "javascript" or "typescript"
    std::string cwd;       ///< its working directory
    std::chrono::system_clock::time_point createdAt;
    std::chrono::system_clock::time_point lastUsed;
};

/// Options of createCodeContext().
struct CreateContextOptions {
    /// "python" (also "python3"), "javascript" ("js", "node") or "typescript" ("ts");
    /// anything else is a SandboxSecurityError.
    std::string language = "python";
    /// Its working directory (relative: from /workspace); default /workspace. It must exist.
    std::optional<std::string> cwd;
    /// Variables its interpreter sees (os.environ, process.env).
    std::map<std::string, std::string> envVars;
    /// How long creating it may take (the request's timeout); default 30 s.
    std::optional<std::chrono::milliseconds> timeout;
};

/// A piece of output, as runCode()'s onStdout / onStderr receive it.
struct OutputMessage {
    std::string text;
    std::int64_t timestamp = 0;  ///< milliseconds since the epoch, when it arrived
};

/// One rich output of a run: the last expression's value, a display() call, a matplotlib
/// figure. Each field holds one representation; formats() names those present.
struct Result {
    std::optional<std::string> text;
    std::optional<std::string> html;
    std::optional<std::string> png;   ///< base64 (pngBytes() decodes it)
    std::optional<std::string> jpeg;  ///< base64 (jpegBytes() decodes it)
    std::optional<std::string> svg;
    std::optional<std::string> latex;
    std::optional<std::string> markdown;
    std::optional<std::string> javascript;
    std::optional<nlohmann::json> json;   ///< a JSON value (an object, an array, ...)
    std::optional<nlohmann::json> chart;  ///< chart data, when the interpreter gives it
    std::optional<nlohmann::json> data;   ///< a raw MIME bundle, when the interpreter gives it
    nlohmann::json metadata = nlohmann::json::object();

    /// The names of the fields present, in the order text, html, png, jpeg, svg, latex,
    /// markdown, javascript, json, chart.
    std::vector<std::string> formats() const;
    /// The PNG image's bytes; nullopt when there is none (or its base64 is broken).
    std::optional<std::string> pngBytes() const;
    /// The JPEG image's bytes; nullopt when there is none.
    std::optional<std::string> jpegBytes() const;
};

/// An error the code raised (a Python exception, a thrown JavaScript error). A run that
/// raises is a result (ExecutionResult::error), not a C++ exception.
struct ExecutionError {
    std::string name;                    ///< "ZeroDivisionError", "TypeError", ...
    std::string value;                   ///< "division by zero"
    std::vector<std::string> traceback;  ///< the stack, a line per entry
};

/// Options of runCode() and runCodeStream().
struct RunCodeOptions {
    /// The context to run in. Without one, a context per language is created on first use
    /// and reused (per Sandbox handle and its copies).
    std::optional<CodeContext> context;
    /// The language when no context is given: "python" (default), "javascript",
    /// "typescript".
    std::string language = "python";
    /// Interrupts the run after this long (KeyboardInterrupt in Python); the context stays
    /// usable. Default: no limit.
    std::optional<std::chrono::milliseconds> timeout;
    /// Called as output and results arrive (runCode() only).
    std::function<void(const OutputMessage&)> onStdout;
    std::function<void(const OutputMessage&)> onStderr;
    std::function<void(const Result&)> onResult;
    std::function<void(const ExecutionError&)> onError;
};

/// What runCode() returns.
struct ExecutionResult {
    std::string code;  ///< the code that ran
    struct {
        std::vector<std::string> stdoutLines;  ///< stdout, piece by piece as it arrived
        std::vector<std::string> stderrLines;  ///< stderr likewise
    } logs;
    std::vector<Result> results;
    std::optional<ExecutionError> error;
    std::int64_t executionCount = 0;  ///< runs of this context so far, this one included
};

/// One event of runCodeStream().
struct CodeEvent {
    enum class Type { Stdout, Stderr, Result, Error, Complete } type = Type::Stdout;
    std::string text;                       ///< Stdout / Stderr
    std::optional<sandbox::Result> result;  ///< Result
    std::optional<ExecutionError> error;    ///< Error
    std::int64_t executionCount = 0;        ///< Complete
};

/// The events of a run as they happen: `for (auto& ev : sb.runCodeStream(code))`. Ends after
/// the Complete event, or after an Error that ends the run (its executor died). Destroying the
/// stream before the end interrupts the run.
class CodeStream {
  public:
    using iterator = PullIterator<CodeStream, CodeEvent>;
    CodeStream(CodeStream&&) noexcept;
    CodeStream& operator=(CodeStream&&) noexcept;
    ~CodeStream();
    /// The next event, or nullopt at the end. Throws StreamLostError when the stream broke
    /// before its end.
    std::optional<CodeEvent> next();
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() { return {}; }

    /// Internal: made by runCodeStream().
    explicit CodeStream(std::unique_ptr<detail::CodeEventReader> events);

  private:
    std::unique_ptr<detail::CodeEventReader> events_;
    bool done_ = false;
};

}  // namespace sandbox
