// interpreter_errors: an exception in the code is part of the result, not a C++ exception
// (the "Error handling" example: 1/0); contexts are listed and deleted.
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        sandbox::ScopedSandbox sb(sandbox::getSandbox(sandbox::Client::fromEnv(), "interp-errors"));
        auto ctx = sb->createCodeContext({.language = "python"});
        auto result = sb->runCode("x = 1\n1 / 0", {.context = ctx});
        if (!result.error) return 1;
        std::cout << "name:  " << result.error->name << "\n";   // ZeroDivisionError
        std::cout << "value: " << result.error->value << "\n";  // division by zero
        std::cout << "traceback:\n";
        for (const auto& line : result.error->traceback) std::cout << "  " << line << "\n";

        auto js = sb->createCodeContext({.language = "javascript"});
        auto thrown = sb->runCode("JSON.parse('{oops')", {.context = js});
        std::cout << "javascript: " << (thrown.error ? thrown.error->name : "no error") << "\n";

        auto contexts = sb->listCodeContexts();
        std::cout << "Found " << contexts.size() << " contexts\n";
        for (const auto& c : contexts) {
            std::cout << "  " << c.id << " (" << c.language << ", " << c.cwd << ")\n";
            sb->deleteCodeContext(c.id);
        }
        // A deleted context is gone: running in it is a typed error.
        try {
            sb->runCode("x", {.context = ctx});
            return 1;
        } catch (const sandbox::ContextNotFoundError& e) {
            std::cout << "after delete: " << e.code() << "\n";
        }
        return result.error->name == "ZeroDivisionError" && sb->listCodeContexts().empty() ? 0 : 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "interpreter_errors: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
