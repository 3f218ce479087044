// background_server: start a web server in the sandbox, wait until its port answers, read its
// logs, then stop it (and everything it started).
#include <iostream>
#include <sandbox/sandbox.hpp>

int main() {
    using namespace std::chrono_literals;
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "background-server-demo");
        sb.writeFile("/workspace/site/index.html", "<h1>hello from the sandbox</h1>\n");

        auto server = sb.startProcess("python3 -m http.server 8000 --bind 127.0.0.1",
                                      {.processId = "web", .cwd = "/workspace/site"});
        std::cout << "started " << server.id << " (pid " << server.pid.value_or(-1) << ")\n";

        // Ready when GET / answers 2xx/3xx; fails fast if the server dies first.
        server.waitForPort(8000, {.path = "/", .timeout = 30s});
        std::cout << "port 8000 is ready\n";

        auto page = sb.exec(
            "python3 -c \"import urllib.request as u; "
            "print(u.urlopen('http://127.0.0.1:8000/index.html').read().decode())\"");
        std::cout << "page: " << page.stdoutText << "\n";

        // The request above shows up in the server's log (http.server logs to stderr).
        auto line = server.waitForLog("GET /index.html", 10s);
        std::cout << "log line: " << line.line << "\n";
        std::cout << "status: " << sandbox::to_string(server.getStatus()) << "\n";

        server.kill();
        auto exit = server.waitForExit(30s);
        std::cout << "stopped, exit code " << exit.exitCode << "\n";
        sb.destroy();
        return exit.exitCode == 143 ? 0 : 1;
    } catch (const sandbox::SandboxError& e) {
        std::cerr << "background_server: " << e.code() << ": " << e.what() << "\n";
        return 1;
    }
}
