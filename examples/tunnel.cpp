// tunnel: a tunnel to a web server in the sandbox. On sandboxd it is a listener on this host
// (or, when sandboxd runs with --cloudflared, a public trycloudflare.com URL); on Cloudflare's
// bridge, a cloudflared quick tunnel. get() is idempotent; destroy() ends it.
#include <iostream>
#include <sandbox/sandbox.hpp>

#include "http_get.hpp"

int main() {
    using namespace std::chrono_literals;
    try {
        auto sb = sandbox::getSandbox(sandbox::Client::fromEnv(), "tunnel-demo");
        sb.writeFile("/workspace/site/index.html", "<h1>through a tunnel</h1>\n");
        auto server = sb.startProcess("python3 -m http.server 8000 --bind 127.0.0.1",
                                      {.processId = "web", .cwd = "/workspace/site"});
        server.waitForPort(8000, {.path = "/", .timeout = 30s});

        auto tunnel = sb.tunnels().get(8000);
        std::cout << "tunnel " << tunnel.id << ": " << tunnel.url << "\n";
        auto again = sb.tunnels().get(8000);
        std::cout << "second get(): the same tunnel: " << (again.id == tunnel.id ? "yes" : "no")
                  << "\n";

        bool fetched = false;
        if (tunnel.url.rfind("http://", 0) == 0) {  // a host listener: fetch through it
            auto page = example::httpGet(tunnel.url);
            std::cout << "GET " << page.status << ": " << page.body.substr(0, page.body.find('\n'))
                      << "\n";
            fetched = page.status == 200;
        }
        std::cout << "tunnels: " << sb.tunnels().list().size() << "\n";
        sb.tunnels().destroy(tunnel);
        std::cout << "after destroy: " << sb.tunnels().list().size() << " tunnels\n";
        sb.destroy();
        return again.id == tunnel.id && (fetched || tunnel.url.rfind("https://", 0) == 0) ? 0 : 1;
    } catch (const std::exception& e) {
        std::cerr << "tunnel: " << e.what() << "\n";
        return 1;
    }
}
