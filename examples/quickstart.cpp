// quickstart: the README's first example. With nothing configured it runs on the embedded
// default (a private sandboxd); set SANDBOX_API_URL + SANDBOX_API_KEY for a bridge, or
// SANDBOX_AGENT_URL for a sandbox's control plane, and the same program runs there.
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        auto client = sandbox::Client::fromEnv();
        auto sb = sandbox::getSandbox(client, "my-sandbox");

        auto result = sb.exec("python3 -c \"print(2 + 2)\"");
        std::cout << "python3 says: " << result.stdoutText << " (exit code " << result.exitCode
                  << ")\n";

        sb.writeFile("/workspace/hello.txt", "Hello, sandbox!");
        auto file = sb.readFile("/workspace/hello.txt");
        std::cout << "hello.txt contains: " << file.content << "\n";

        sb.destroy();
        return result.stdoutText == "4" && file.content == "Hello, sandbox!" ? 0 : 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "quickstart: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
