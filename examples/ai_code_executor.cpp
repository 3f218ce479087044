// ai_code_executor: the "Build an AI code executor" tutorial's flow. A model's answer (here a
// fixed string: no model is called) is Python code; it is written to the sandbox and run there,
// never on this machine, and the question, code, output and error are reported as JSON. The
// same code then runs through the code interpreter, which also returns the last value.
#include <iostream>
#include <nlohmann/json.hpp>
#include <sandbox/sandbox.hpp>

namespace {
// What a model might answer to: "What is the sum of the squares of 1 to 10?"
const char* kGeneratedCode = R"py(total = sum(n * n for n in range(1, 11))
print(f"The sum of the squares of 1 to 10 is {total}")
total
)py";
}  // namespace

int main() {
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "demo-user");
        sb.writeFile("/tmp/code.py", kGeneratedCode);
        auto result = sb.exec("python3 /tmp/code.py");
        nlohmann::json answer = {{"success", result.success},
                                 {"question", "What is the sum of the squares of 1 to 10?"},
                                 {"code", kGeneratedCode},
                                 {"output", result.stdoutText},
                                 {"error", result.stderrText}};
        std::cout << answer.dump(2) << "\n";

        auto run = sb.runCode(kGeneratedCode);
        std::string value = run.results.empty() ? "" : run.results[0].text.value_or("");
        std::cout << "interpreter: value " << value << "\n";
        sb.destroy();
        return result.success && value == "385" ? 0 : 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "ai_code_executor: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
