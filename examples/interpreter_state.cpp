// interpreter_state: a Python context keeps its variables and imports between runs (the
// "Code Interpreter" page's first example), and contexts do not share state.
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        sandbox::ScopedSandbox sb(sandbox::getSandbox(sandbox::Client::fromEnv(), "interp-state"));
        auto ctx = sb->createCodeContext({.language = "python"});
        sb->runCode("import math; radius = 5", {.context = ctx});
        auto result = sb->runCode("math.pi * radius ** 2", {.context = ctx});
        std::cout << "area: " << result.results.at(0).text.value_or("") << "\n";  // 78.53...

        // Another context is another interpreter: `radius` does not exist there.
        auto other = sb->createCodeContext({.language = "python"});
        auto missing = sb->runCode("radius", {.context = other});
        std::cout << "other context: " << (missing.error ? missing.error->name : "no error")
                  << "\n";  // NameError

        // Output arrives through callbacks as it is printed.
        sb->runCode("for i in range(3): print(f'step {i}')",
                    {.context = ctx, .onStdout = [](const sandbox::OutputMessage& m) {
                         std::cout << "stdout: " << m.text;
                     }});
        bool ok = result.results.at(0).text == "78.53981633974483" && missing.error &&
                  missing.error->name == "NameError";
        return ok ? 0 : 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "interpreter_state: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
