// sessions: separate shells with their own directory and variables in one sandbox.
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "sessions-demo");
        auto build =
            sb.createSession({.id = "build", .env = {{"MODE", "release"}}, .cwd = "/workspace"});
        auto test = sb.createSession({.id = "test", .env = {{"MODE", "debug"}}});

        build.exec("mkdir -p out && cd out");
        std::cout << "build: " << build.exec("pwd; echo $MODE").stdoutText << "\n";
        std::cout << "test:  " << test.exec("pwd; echo $MODE").stdoutText << "\n";

        // A shell that exits ends its session; the next call starts a fresh one.
        try {
            build.exec("exit 3");
        } catch (const sandbox::SessionTerminatedError& e) {
            std::cout << "build session ended: " << e.what() << "\n";
        }
        std::cout << "build again: " << build.exec("pwd").stdoutText << "\n";
        sb.deleteSession("test");
        sb.destroy();
        return 0;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "sessions: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
