// exec_stream: a command's output as it happens, pulled event by event.
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "stream-demo");
        int exitCode = -1;
        for (const auto& ev :
             sb.execStream("for i in 1 2 3; do echo \"tick $i\"; sleep 0.1; done; echo done >&2")) {
            switch (ev.type) {
                case sandbox::ExecEvent::Type::Start:
                    std::cout << "started: " << ev.command << "\n";
                    break;
                case sandbox::ExecEvent::Type::Stdout:
                    std::cout << "stdout: " << ev.data;
                    break;
                case sandbox::ExecEvent::Type::Stderr:
                    std::cout << "stderr: " << ev.data;
                    break;
                case sandbox::ExecEvent::Type::Complete:
                    exitCode = ev.exitCode.value_or(-1);
                    break;
                case sandbox::ExecEvent::Type::Error:
                    std::cerr << "error: " << ev.data << "\n";
                    break;
            }
        }
        std::cout << "exit code " << exitCode << "\n";

        // The same with a callback, collecting the result.
        auto r = sb.exec(
            "echo one; echo two",
            {.stream = true, .onOutput = [](const std::string& stream, const std::string& data) {
                 std::cout << "[" << stream << "] " << data;
             }});
        sb.destroy();
        return exitCode == 0 && r.success ? 0 : 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "exec_stream: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
