// The code interpreter over the container API (/api/contexts, /api/execute/code): contexts,
// runs as a pull stream of events, runCode's result and callbacks, and each Sandbox's default
// context per language. Other transports say they cannot (Connection::containerApi).
#include <mutex>
#include <nlohmann/json.hpp>

#include "client/client_impl.hpp"
#include "client/container_connection.hpp"
#include "client/error_mapping.hpp"
#include "core/base64.hpp"
#include "core/json_util.hpp"
#include "core/wire_interpreter.hpp"
#include "sandbox/interpreter.hpp"

namespace sandbox {
namespace wire = core::wire;
using nlohmann::json;

// ---- Result ---------------------------------------------------------------------------------

std::vector<std::string> Result::formats() const {
    std::vector<std::string> out;
    auto add = [&](const char* name, bool present) {
        if (present) out.emplace_back(name);
    };
    add("text", text.has_value());
    add("html", html.has_value());
    add("png", png.has_value());
    add("jpeg", jpeg.has_value());
    add("svg", svg.has_value());
    add("latex", latex.has_value());
    add("markdown", markdown.has_value());
    add("javascript", javascript.has_value());
    add("json", json.has_value());
    add("chart", chart.has_value());
    return out;
}

std::optional<std::string> Result::pngBytes() const {
    return png ? core::base64Decode(*png) : std::nullopt;
}

std::optional<std::string> Result::jpegBytes() const {
    return jpeg ? core::base64Decode(*jpeg) : std::nullopt;
}

namespace detail {
namespace {

// A result event's fields; a MIME bundle in `data` fills the fields it has that are missing
// (text/plain -> text, image/png -> png, ...), as the TypeScript SDK's Result does.
Result resultFrom(const json& ev) {
    Result r;
    auto text = [&](const char* key) -> std::optional<std::string> {
        auto it = ev.find(key);
        if (it != ev.end() && it->is_string()) return it->get<std::string>();
        return std::nullopt;
    };
    r.text = text("text");
    r.html = text("html");
    r.png = text("png");
    r.jpeg = text("jpeg");
    r.svg = text("svg");
    r.latex = text("latex");
    r.markdown = text("markdown");
    r.javascript = text("javascript");
    if (auto it = ev.find("json"); it != ev.end() && !it->is_null()) r.json = *it;
    if (auto it = ev.find("chart"); it != ev.end() && it->is_object()) r.chart = *it;
    if (auto it = ev.find("data"); it != ev.end() && it->is_object()) {
        r.data = *it;
        auto mime = [&](std::optional<std::string>& field, const char* type) {
            if (auto m = it->find(type); !field && m != it->end() && m->is_string())
                field = m->get<std::string>();
        };
        mime(r.text, "text/plain");
        mime(r.html, "text/html");
        mime(r.png, "image/png");
        mime(r.jpeg, "image/jpeg");
        mime(r.svg, "image/svg+xml");
        mime(r.latex, "text/latex");
        mime(r.markdown, "text/markdown");
        mime(r.javascript, "application/javascript");
        if (auto m = it->find("application/json"); !r.json && m != it->end()) r.json = *m;
    }
    if (auto it = ev.find("metadata"); it != ev.end() && it->is_object()) r.metadata = *it;
    return r;
}

ExecutionError errorFrom(const json& ev) {
    ExecutionError e;
    if (auto it = ev.find("ename"); it != ev.end() && it->is_string()) e.name = *it;
    if (auto it = ev.find("evalue"); it != ev.end() && it->is_string()) e.value = *it;
    if (auto it = ev.find("traceback"); it != ev.end() && it->is_array())
        for (const auto& l : *it)
            if (l.is_string()) e.traceback.push_back(l.get<std::string>());
    return e;
}

}  // namespace

/// The events of /api/execute/code in the SDK's terms.
class CodeEventReader {
  public:
    explicit CodeEventReader(std::unique_ptr<EventSource> src) : src_(std::move(src)) {}

    /// The next event; nullopt at the end of the stream. `sawEnd` says whether the run ended
    /// properly (execution_complete, or an error event that ended the stream).
    std::optional<CodeEvent> next(bool& sawEnd) {
        for (;;) {
            auto sse = src_->next();
            if (!sse) {
                sawEnd = sawError_;
                return std::nullopt;
            }
            json ev = core::parseJson(sse->data);
            if (!ev.is_object()) continue;
            auto type = ev.value("type", std::string());
            CodeEvent out;
            if (type == "stdout" || type == "stderr") {
                out.type = type == "stdout" ? CodeEvent::Type::Stdout : CodeEvent::Type::Stderr;
                out.text = ev.value("text", std::string());
            } else if (type == "result") {
                out.type = CodeEvent::Type::Result;
                out.result = resultFrom(ev);
            } else if (type == "error") {
                out.type = CodeEvent::Type::Error;
                out.error = errorFrom(ev);
                sawError_ = true;
            } else if (type == "execution_complete") {
                out.type = CodeEvent::Type::Complete;
                if (auto it = ev.find("execution_count"); it != ev.end() && it->is_number_integer())
                    out.executionCount = it->get<std::int64_t>();
                sawEnd = true;
            } else {
                continue;  // a kind this SDK does not know yet
            }
            return out;
        }
    }

  private:
    std::unique_ptr<EventSource> src_;
    bool sawError_ = false;
};

}  // namespace detail

// ---- CodeStream -------------------------------------------------------------------------------

CodeStream::CodeStream(std::unique_ptr<detail::CodeEventReader> events)
    : events_(std::move(events)) {}
CodeStream::CodeStream(CodeStream&&) noexcept = default;
CodeStream& CodeStream::operator=(CodeStream&&) noexcept = default;
CodeStream::~CodeStream() = default;

std::optional<CodeEvent> CodeStream::next() try {
    if (done_ || !events_) return std::nullopt;
    bool ended = false;
    auto ev = events_->next(ended);
    if (!ev) {
        done_ = true;
        if (!ended)
            throw StreamLostError("STREAM_LOST", "the code run's stream ended before the run did",
                                  0, json::object(), "runCodeStream");
        return std::nullopt;
    }
    if (ended) done_ = true;  // execution_complete: nothing follows
    return ev;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "runCodeStream");
}

// ---- the Sandbox's methods ----------------------------------------------------------------------

namespace {

using detail::SandboxState;
using Clock = std::chrono::system_clock;

detail::ContainerApi& interpreterApi(SandboxState& st, const char* method) {
    return st.conn().containerApi(method);
}

wire::CodeLanguage languageOf(std::string_view language, const char* op) {
    auto l = wire::parseCodeLanguage(language);
    if (!l)
        throw SandboxSecurityError(
            "SECURITY_VIOLATION",
            "Unsupported language '" + std::string(language) +
                "': use python, python3, javascript, js, node, typescript or ts",
            400, json{{"language", language}}, op);
    return *l;
}

CodeContext contextFrom(const wire::ContextInfo& info) {
    CodeContext c;
    c.id = info.id;
    c.language = info.language;
    c.cwd = info.cwd;
    c.createdAt = c.lastUsed = Clock::now();
    return c;
}

// `session`: an ExecutionSession's id; its contexts end with it (X-Session-Id).
CodeContext createContext(SandboxState& st, const CreateContextOptions& o,
                          const std::optional<std::string>& session = std::nullopt) {
    wire::CreateContextRequest req;
    req.language = std::string(wire::to_string(languageOf(o.language, "createCodeContext")));
    req.cwd = o.cwd;
    req.envVars = o.envVars;
    if (o.timeout) req.timeoutMs = o.timeout->count();
    client::HeaderList headers;
    if (session) headers.emplace_back("X-Session-Id", *session);
    json j = interpreterApi(st, "createCodeContext()")
                 .post("/api/contexts", req.toJson(), "interpreter.createContext", headers);
    auto info = wire::ContextInfo::fromJson(j);
    if (info.id.empty())
        throw SandboxError("INVALID_RESPONSE", "createCodeContext: the answer names no context", 0,
                           json::object(), "interpreter.createContext");
    return contextFrom(info);
}

// The context a run uses: the one given, else this sandbox's default for the language.
CodeContext contextFor(SandboxState& st, const RunCodeOptions& o, bool& isDefault) {
    isDefault = false;
    if (o.context) return *o.context;
    auto lang = std::string(wire::to_string(languageOf(o.language, "runCode")));
    {
        std::lock_guard lock(st.interpreterMutex);
        if (auto it = st.defaultContexts.find(lang); it != st.defaultContexts.end()) {
            isDefault = true;
            return it->second;
        }
    }
    CodeContext made = createContext(st, CreateContextOptions{.language = lang});
    std::lock_guard lock(st.interpreterMutex);
    // Another thread may have made one meanwhile: the first stays the default.
    auto [it, inserted] = st.defaultContexts.emplace(lang, made);
    if (!inserted) {
        try {
            interpreterApi(st, "runCode()")
                .get("/api/contexts/" + made.id, "interpreter.deleteContext", "DELETE");
        } catch (const SandboxError&) {
        }
    }
    isDefault = true;
    return it->second;
}

std::unique_ptr<detail::CodeEventReader> startRun(SandboxState& st, std::string_view code,
                                                  const RunCodeOptions& o, const char* method) {
    bool isDefault = false;
    CodeContext ctx = contextFor(st, o, isDefault);
    wire::RunCodeRequest req;
    req.contextId = ctx.id;
    req.code = std::string(code);
    req.language = ctx.language;
    if (o.timeout) req.timeoutMs = o.timeout->count();
    auto& api = interpreterApi(st, method);
    std::string body = detail::jsonBody(req.toJson(), "interpreter.runCode");
    try {
        return std::make_unique<detail::CodeEventReader>(
            api.stream("POST", "/api/execute/code", body, "interpreter.runCode"));
    } catch (const ContextNotFoundError&) {
        if (!isDefault) throw;
        // The default context is gone (the sandbox restarted, or it was deleted by id): make
        // a new one, once.
        {
            std::lock_guard lock(st.interpreterMutex);
            st.defaultContexts.erase(ctx.language);
        }
        ctx = contextFor(st, o, isDefault);
        req.contextId = ctx.id;
        body = detail::jsonBody(req.toJson(), "interpreter.runCode");
        return std::make_unique<detail::CodeEventReader>(
            api.stream("POST", "/api/execute/code", body, "interpreter.runCode"));
    }
}

std::int64_t nowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
        .count();
}

}  // namespace

CodeContext SandboxOperations::createCodeContext(const CreateContextOptions& options) const try {
    return createContext(*state_, options, session_);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "createCodeContext");
}

std::vector<CodeContext> SandboxOperations::listCodeContexts() const try {
    json j = interpreterApi(*state_, "listCodeContexts()")
                 .get("/api/contexts", "interpreter.listContexts");
    std::vector<CodeContext> out;
    if (auto it = j.find("contexts"); it != j.end() && it->is_array())
        for (const auto& c : *it) out.push_back(contextFrom(wire::ContextInfo::fromJson(c)));
    return out;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "listCodeContexts");
}

void SandboxOperations::deleteCodeContext(std::string_view contextId) const try {
    std::string id(contextId);
    if (id.empty() || id.find_first_of("/?#% \r\n") != std::string::npos)
        throw ValidationFailedError("VALIDATION_FAILED", "Invalid context id '" + id + "'", 400,
                                    json{{"contextId", id}}, "interpreter.deleteContext");
    interpreterApi(*state_, "deleteCodeContext()")
        .get("/api/contexts/" + id, "interpreter.deleteContext", "DELETE");
    std::lock_guard lock(state_->interpreterMutex);
    for (auto it = state_->defaultContexts.begin(); it != state_->defaultContexts.end();)
        it = it->second.id == id ? state_->defaultContexts.erase(it) : std::next(it);
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "deleteCodeContext");
}

CodeStream SandboxOperations::runCodeStream(std::string_view code,
                                            const RunCodeOptions& options) const try {
    return CodeStream(startRun(*state_, code, options, "runCodeStream()"));
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "runCodeStream");
}

ExecutionResult SandboxOperations::runCode(std::string_view code,
                                           const RunCodeOptions& options) const try {
    CodeStream stream(startRun(*state_, code, options, "runCode()"));
    ExecutionResult out;
    out.code = std::string(code);
    while (auto ev = stream.next()) {
        switch (ev->type) {
            case CodeEvent::Type::Stdout:
                out.logs.stdoutLines.push_back(ev->text);
                if (options.onStdout) options.onStdout(OutputMessage{ev->text, nowMs()});
                break;
            case CodeEvent::Type::Stderr:
                out.logs.stderrLines.push_back(ev->text);
                if (options.onStderr) options.onStderr(OutputMessage{ev->text, nowMs()});
                break;
            case CodeEvent::Type::Result:
                out.results.push_back(*ev->result);
                if (options.onResult) options.onResult(*ev->result);
                break;
            case CodeEvent::Type::Error:
                out.error = *ev->error;
                if (options.onError) options.onError(*ev->error);
                break;
            case CodeEvent::Type::Complete:
                out.executionCount = ev->executionCount;
                break;
        }
    }
    return out;
} catch (const nlohmann::json::exception& e) {
    detail::rethrowUnexpected(e, "runCode");
}

}  // namespace sandbox
