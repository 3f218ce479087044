// agent_quickstart: drives a sandbox-agent over its container API (the wire protocol the SDK
// speaks): run a command, write a file and read it back, stream a command's output.
//   agent_quickstart http://127.0.0.1:3000        (or unix:/path/to/agent.sock)
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "client/http_client.hpp"
#include "sandbox/sse.hpp"

using nlohmann::json;

int main(int argc, char** argv) {
    const char* url = argc > 1 ? argv[1] : std::getenv("SANDBOX_AGENT_URL");
    if (!url) {
        std::cerr << "usage: agent_quickstart AGENT_URL (or set SANDBOX_AGENT_URL)\n";
        return 2;
    }
    try {
        sandbox::client::HttpConnection http(sandbox::client::Endpoint::parse(url));
        auto call = [&](const char* route, const json& body) {
            auto r = http.request("POST", route, body.dump());
            json j = json::parse(r.body);
            if (r.status != 200)
                throw std::runtime_error(std::string(route) + ": " + j.value("message", r.body));
            return j;
        };

        // 1. A command in the default session.
        json exec = call("/api/execute", {{"command", "python3 -c \"print(2 + 2)\""}});
        std::cout << "python3 says: " << exec["stdout"].get<std::string>() << " (exit code "
                  << exec["exitCode"] << ")\n";

        // 2. A file written and read back (relative paths start in the workspace).
        call("/api/write", {{"path", "hello.txt"}, {"content", "Hello, sandbox!"}});
        json file = call("/api/read", {{"path", "hello.txt"}});
        std::cout << "hello.txt contains: " << file["content"].get<std::string>() << " ("
                  << file["mimeType"].get<std::string>() << ", " << file["size"] << " bytes)\n";

        // 3. A streamed command: events arrive as the command prints.
        sandbox::SseParser parser;
        bool complete = false;
        http.stream("POST", "/api/execute/stream",
                    json{{"command", "for i in 1 2 3; do echo tick $i; done"}}.dump(), {},
                    [&](std::string_view chunk) {
                        parser.feed(chunk, [&](sandbox::SseEvent&& ev) {
                            json e = json::parse(ev.data);
                            if (e["type"] == "stdout")
                                std::cout << "stream: " << e["data"].get<std::string>();
                            if (e["type"] == "complete") {
                                complete = true;
                                std::cout << "stream complete, exit code " << e["exitCode"] << "\n";
                            }
                        });
                        return true;
                    });
        if (!complete) throw std::runtime_error("the stream ended without a complete event");
        return exec["exitCode"] == 0 && file["content"] == "Hello, sandbox!" ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "agent_quickstart: " << e.what() << "\n";
        return 1;
    }
}
