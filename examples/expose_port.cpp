// expose_port: a web server in the sandbox, opened from this machine by its preview URL (the
// URL works in a browser too: *.localhost names reach this machine). Then the port is listed,
// unexposed, and the same URL answers 404.
#include <iostream>
#include <sandbox/sandbox.hpp>

#include "http_get.hpp"

int main() {
    using namespace std::chrono_literals;
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "expose-port-demo");
        sb.writeFile("/workspace/site/index.html", "<h1>hello from the sandbox</h1>\n");
        auto server = sb.startProcess("python3 -m http.server 8000 --bind 127.0.0.1",
                                      {.processId = "web", .cwd = "/workspace/site"});
        server.waitForPort(8000, {.path = "/", .timeout = 30s});

        auto exposed = sb.exposePort(8000, {.name = "web"});
        std::cout << "preview URL: " << exposed.url << "\n";

        auto page = example::httpGet(exposed.url);
        std::cout << "GET " << page.status << ": " << page.body.substr(0, page.body.find('\n'))
                  << "\n";

        for (const auto& p : sb.getExposedPorts())
            std::cout << "exposed: " << p.port << " " << p.name.value_or("") << " " << p.status
                      << "\n";

        sb.unexposePort(8000);
        auto after = example::httpGet(exposed.url);
        std::cout << "after unexposePort: " << after.status << "\n";

        sb.destroy();
        return page.status == 200 && after.status == 404 ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "expose_port: " << e.what() << "\n";
        return 1;
    }
}
