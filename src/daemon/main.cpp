// sandboxd: the host daemon. Creates isolated sandboxes on demand (one sandbox-agent per id,
// inside bubblewrap namespaces) and serves the bridge /v1 API. See docs/sandboxd.md.
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <chrono>
#include <clocale>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <optional>
#include <string>

#include "daemon/bridge_routes.hpp"
#include "daemon/network.hpp"
#include "daemon/sandbox_manager.hpp"
#include "sandbox/version.hpp"
#include "server/http_server.hpp"

namespace {

void usage(std::ostream& os) {
    os << "usage: sandboxd --listen HOST:PORT|unix:PATH [--api-key KEY] [--state-dir DIR]\n"
          "                [--isolation bwrap|none] [--agent PATH] [--uid-range FIRST[:COUNT]]\n"
          "                [--memory-mb N] [--max-processes N] [--cpus N] [--disk-mb N]\n"
          "                [--tmp-mb N] [--max-open-files N] [--max-file-mb N]\n"
          "                [--max-connections N] [--header-timeout-ms MS] [--body-timeout-ms MS]\n"
          "                [--idle-timeout-ms MS] [--preview-listen HOST:PORT]\n"
          "                [--public-url URL] [--tunnel-host ADDR] [--cloudflared PATH|auto]\n"
          "                [--network none|outbound] [--network-allow RULE]...\n"
          "       sandboxd --version\n"
          "\n"
          "Serves the sandbox bridge API (/v1) and runs one isolated sandbox-agent per sandbox.\n"
          "  --api-key        bearer token required on /v1 routes (also SANDBOX_API_KEY); none = "
          "no auth\n"
          "  --state-dir      where workspaces and sockets live (default /run/sandboxd as root,\n"
          "                   else $XDG_RUNTIME_DIR/sandboxd or /tmp/sandboxd-UID)\n"
          "  --isolation      bwrap (the default: sandboxd refuses to start where bubblewrap\n"
          "                   cannot isolate) or none (no isolation at all: development only)\n"
          "  --agent          the sandbox-agent binary (default: next to sandboxd)\n"
          "  --uid-range      host uids (and gids) for sandboxes when sandboxd is root: FIRST is\n"
          "                   their shared group, each sandbox gets one of the next COUNT-1\n"
          "                   (default 1879048192:65536); must not overlap any user or group\n"
          "  --memory-mb      memory per sandbox, swap included (default 1024)\n"
          "  --max-processes  processes per sandbox (default 512)\n"
          "  --cpus           CPU time per sandbox, in CPUs, e.g. 0.5 (default 1; 0 = no limit)\n"
          "  --disk-mb        size of each workspace, a tmpfs of its own (default 2048; root "
          "only;\n"
          "                   0 = a plain directory, no limit)\n"
          "  --tmp-mb         size of each sandbox's /tmp (default 1024)\n"
          "  --max-open-files open files per process (default 4096)\n"
          "  --max-file-mb    largest file a sandbox may write (default 4096)\n"
          "  --max-connections N     open HTTP connections at most; one more is answered 503\n"
          "                          at once and closed (default 1024)\n"
          "  --header-timeout-ms MS  a request head must arrive within MS of the accept (later\n"
          "                          requests: of their first byte), else 408 (default 30000)\n"
          "  --body-timeout-ms MS    longest pause while a request body arrives, else 408\n"
          "                          (default 60000; an upload that keeps flowing is not cut)\n"
          "  --idle-timeout-ms MS    a kept-alive connection with no new request for MS is\n"
          "                          closed (default 75000)\n"
          "  --exit-with-stdin  shut down (destroying every sandbox) when stdin reaches end of "
          "file;\n"
          "                   used by the SDK's embedded default so sandboxd never outlives its "
          "program\n"
          "  --preview-listen HOST:PORT  a listener for preview URLs only (exposePort), e.g.\n"
          "                   127.0.0.1:8080; without it previews use --listen when it is TCP\n"
          "  --public-url URL the base of preview URLs (http(s)://HOST[:PORT]) when users reach\n"
          "                   sandboxd by another name; default http://localhost:PORT\n"
          "  --tunnel-host ADDR  where tunnels listen (default 127.0.0.1: this host only)\n"
          "  --cloudflared PATH|auto  publish tunnels as cloudflared quick tunnels (auto: find\n"
          "                   cloudflared on PATH); without it a tunnel is the host listener\n"
          "  --network none|outbound  the network of sandboxes not given one of their own\n"
          "                   (default none: their own loopback only; see docs/network.md)\n"
          "  --network-allow RULE  with outbound: what they may reach (repeatable):\n"
          "                   A.B.C.D[/N][:PORT[-PORT]], NAME[:PORT[-PORT]] (resolved at\n"
          "                   start-up), host-loopback:PORT[-PORT], dns\n"
          "  --warm-pool-target N            sandboxes kept started ahead of demand (also\n"
          "                                  WARM_POOL_TARGET; default 0)\n"
          "  --warm-pool-refresh-interval MS how often the pool is checked and topped up (also\n"
          "                                  WARM_POOL_REFRESH_INTERVAL; default 10000)\n"
          "  WARM_POOL_MAX_INSTANCES, WARM_POOL_SCALE_BATCH_SIZE: as in the bridge\n"
          "Memory, process and CPU limits use cgroups (v2, or v1 memory/pids/cpu); where neither\n"
          "is usable sandboxd says so and falls back to rlimits, or refuses to start when one of\n"
          "those limits was given on the command line.\n";
}

std::string selfDir() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    return std::filesystem::path(std::string(buf, static_cast<size_t>(n))).parent_path();
}

}  // namespace

int main(int argc, char** argv) {
    using namespace sandbox::daemon;
    std::string listen, isolation, previewListen, publicUrl, tunnelHost = "127.0.0.1", cloudflared;
    bool exitWithStdin = false;
    DaemonConfig cfg;
    sandbox::server::ServerOptions serverOpts;
    serverOpts.serverName = "sandboxd";
    if (const char* k = std::getenv("SANDBOX_API_KEY")) cfg.apiKey = k;
    cfg.pool =
        sandbox::core::wire::PoolConfig::fromEnv([](const char* n) { return std::getenv(n); });
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "sandboxd: " << a << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        auto number = [&]() -> long long {
            std::string v = value();
            char* end = nullptr;
            long long n = std::strtoll(v.c_str(), &end, 10);
            if (!end || *end || n <= 0) {
                std::cerr << "sandboxd: " << a << " needs a positive number, got '" << v << "'\n";
                std::exit(2);
            }
            return n;
        };
        if (a == "--listen")
            listen = value();
        else if (a == "--api-key")
            cfg.apiKey = value();
        else if (a == "--state-dir")
            cfg.stateDir = value();
        else if (a == "--isolation")
            isolation = value();
        else if (a == "--agent")
            cfg.agentPath = value();
        else if (a == "--memory-mb") {
            cfg.limits.memoryBytes = static_cast<std::uint64_t>(number()) << 20;
            cfg.limits.cgroupLimitsRequired = true;
        } else if (a == "--max-processes") {
            cfg.limits.maxProcesses = static_cast<int>(number());
            cfg.limits.cgroupLimitsRequired = true;
        } else if (a == "--cpus") {
            std::string v = value();
            char* end = nullptr;
            double n = std::strtod(v.c_str(), &end);
            if (!end || *end || !(n >= 0) || n > 4096) {
                std::cerr << "sandboxd: --cpus needs a number of CPUs (0 = no limit), got '" << v
                          << "'\n";
                return 2;
            }
            cfg.limits.cpus = n;
            cfg.limits.cgroupLimitsRequired = cfg.limits.cgroupLimitsRequired || n > 0;
        } else if (a == "--disk-mb" || a == "--tmp-mb") {
            std::string v = value();
            char* end = nullptr;
            long long n = std::strtoll(v.c_str(), &end, 10);
            if (!end || *end || n < 0 || (a == "--tmp-mb" && n == 0) || n > (1ll << 30)) {
                std::cerr << "sandboxd: " << a << " needs a size in MiB, got '" << v << "'\n";
                return 2;
            }
            (a == "--disk-mb" ? cfg.limits.diskBytes : cfg.limits.tmpBytes) =
                static_cast<std::uint64_t>(n) << 20;
        } else if (a == "--uid-range") {
            std::string v = value();
            unsigned long long first = 0, count = IdentityRange::kDefaultCount;
            char* end = nullptr;
            first = std::strtoull(v.c_str(), &end, 10);
            if (end && *end == ':') count = std::strtoull(end + 1, &end, 10);
            if (!end || *end || first < 1000 || count < 2 || count > (1ull << 24) ||
                first + count > 0x7fffffffull) {
                std::cerr << "sandboxd: --uid-range needs FIRST[:COUNT] with FIRST >= 1000, COUNT "
                             ">= 2 and the range below 2^31, got '"
                          << v << "'\n";
                return 2;
            }
            cfg.uidFirst = static_cast<uid_t>(first);
            cfg.uidCount = static_cast<std::uint32_t>(count);
        } else if (a == "--max-open-files")
            cfg.limits.maxOpenFiles = static_cast<int>(number());
        else if (a == "--max-file-mb")
            cfg.limits.maxFileBytes = static_cast<std::uint64_t>(number()) << 20;
        else if (a == "--max-connections")
            serverOpts.maxConnections = static_cast<std::size_t>(number());
        else if (a == "--header-timeout-ms")
            serverOpts.headerTimeout = std::chrono::milliseconds(number());
        else if (a == "--body-timeout-ms")
            serverOpts.bodyTimeout = std::chrono::milliseconds(number());
        else if (a == "--idle-timeout-ms")
            serverOpts.idleTimeout = std::chrono::milliseconds(number());
        else if (a == "--warm-pool-target")
            cfg.pool.warmTarget = number();
        else if (a == "--warm-pool-refresh-interval")
            cfg.pool.refreshInterval = number();
        else if (a == "--exit-with-stdin")
            exitWithStdin = true;
        else if (a == "--preview-listen")
            previewListen = value();
        else if (a == "--public-url") {
            publicUrl = value();
            while (!publicUrl.empty() && publicUrl.back() == '/') publicUrl.pop_back();
            auto scheme = publicUrl.find("://");
            if ((publicUrl.rfind("http://", 0) != 0 && publicUrl.rfind("https://", 0) != 0) ||
                publicUrl.size() <= scheme + 3 ||
                publicUrl.find('/', scheme + 3) != std::string::npos) {
                std::cerr << "sandboxd: --public-url needs http(s)://HOST[:PORT], got '"
                          << publicUrl << "'\n";
                return 2;
            }
        } else if (a == "--tunnel-host") {
            tunnelHost = value();
            boost::system::error_code ec;
            boost::asio::ip::make_address(tunnelHost, ec);
            if (ec) {
                std::cerr << "sandboxd: --tunnel-host needs an IP address, got '" << tunnelHost
                          << "'\n";
                return 2;
            }
        } else if (a == "--cloudflared")
            cloudflared = value();
        else if (a == "--network") {
            std::string v = value();
            if (v != "none" && v != "outbound") {
                std::cerr << "sandboxd: --network takes none or outbound, got '" << v << "'\n";
                return 2;
            }
            cfg.network.outbound = v == "outbound";
        } else if (a == "--network-allow") {
            std::string why;
            auto rule = sandbox::core::wire::parseNetworkRule(value(), why);
            if (!rule) {
                std::cerr << "sandboxd: --network-allow: " << why << "\n";
                return 2;
            }
            cfg.network.allow.push_back(*rule);
        } else if (a == "-h" || a == "--help") {
            usage(std::cout);
            return 0;
        } else if (a == "--version") {
            std::cout << "sandboxd " << SANDBOX_VERSION_STRING << "\n";
            return 0;
        } else {
            std::cerr << "sandboxd: unknown argument '" << a << "'\n";
            usage(std::cerr);
            return 2;
        }
    }
    if (!cfg.network.outbound && !cfg.network.allow.empty()) {
        std::cerr << "sandboxd: --network-allow needs --network outbound\n";
        return 2;
    }
    if (cfg.network.outbound) {
        if (std::string why =
                outboundUnavailable(::geteuid() == 0, isolation.empty() || isolation == "bwrap");
            !why.empty()) {
            std::cerr << "sandboxd: --network outbound: " << why << "\n";
            return 1;
        }
    }
    if (listen.empty()) {
        std::cerr << "sandboxd: --listen is required\n";
        usage(std::cerr);
        return 2;
    }
    if (cfg.stateDir.empty()) {
        const char* rt = std::getenv("XDG_RUNTIME_DIR");
        if (::geteuid() == 0)
            cfg.stateDir =
                "/run/sandboxd";  // searchable by the sandboxes' group, unlike /run/user/0
        else
            cfg.stateDir = rt && *rt ? std::string(rt) + "/sandboxd"
                                     : "/tmp/sandboxd-" + std::to_string(::getuid());
    }
    if (cfg.agentPath.empty()) cfg.agentPath = selfDir() + "/sandbox-agent";
    if (::access(cfg.agentPath.c_str(), X_OK) != 0) {
        std::cerr << "sandboxd: the sandbox-agent binary is not at " << cfg.agentPath
                  << " (use --agent PATH)\n";
        return 1;
    }
    std::error_code fsErr;
    cfg.agentPath = std::filesystem::canonical(cfg.agentPath, fsErr).string();
    if (isolation.empty() || isolation == "bwrap") {
        cfg.isolation = Isolation::Bwrap;
    } else if (isolation == "none") {
        cfg.isolation = Isolation::None;
    } else {
        std::cerr << "sandboxd: --isolation must be bwrap or none\n";
        return 2;
    }
    // As root, sandboxd's own mounts (each workspace's tmpfs, bucket mounts) live in a mount
    // namespace of its own: the host never sees them, and they go away with sandboxd however it
    // ends (a SIGKILL included).
    if (::geteuid() == 0 && cfg.isolation == Isolation::Bwrap) {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            std::cerr << "sandboxd: cannot make a private mount namespace: " << std::strerror(errno)
                      << "\n";
            return 1;
        }
    }
    if (cfg.apiKey.empty())
        std::cerr << "sandboxd: WARNING: no API key (--api-key or SANDBOX_API_KEY): authentication "
                     "is disabled\n";
    ::signal(SIGPIPE, SIG_IGN);
    // Archive member names are UTF-8: libarchive converts them through the locale's charset.
    if (!std::setlocale(LC_CTYPE, "C.UTF-8")) std::setlocale(LC_CTYPE, "");

    boost::asio::io_context io(1);
    // The default policy's host names, resolved once here and pinned.
    if (cfg.network.has(sandbox::core::wire::NetworkRule::Kind::Host)) {
        std::optional<NameProblem> problem;
        boost::asio::co_spawn(
            io,
            [&]() -> boost::asio::awaitable<void> { problem = co_await resolveNames(cfg.network); },
            boost::asio::detached);
        io.run();
        io.restart();
        if (problem) {
            std::cerr << "sandboxd: --network-allow: " << problem->message << "\n";
            return 1;
        }
    }
    std::optional<SandboxManager> managerStore;
    try {
        managerStore.emplace(io.get_executor(), cfg);
    } catch (const std::exception& e) {
        std::cerr << "sandboxd: " << e.what() << "\n";
        return 1;
    }
    SandboxManager& manager = *managerStore;
    // Never silently unisolated: a sandbox is started here as every sandbox will be, and if
    // that fails sandboxd does not start (--isolation none is the explicit way to run without).
    if (std::string why = manager.probeIsolation(); !why.empty()) {
        std::cerr
            << "sandboxd: bubblewrap cannot isolate sandboxes on this machine: " << why
            << "\n"
               "sandboxd: sandboxes need unprivileged user namespaces (kernel "
               "user.max_user_namespaces > 0, and no AppArmor or SELinux rule denying them "
               "to /usr/bin/bwrap), pid, mount, network, IPC and UTS namespaces, and seccomp. "
               "Use --isolation none to run sandboxes without any isolation (development "
               "only).\n";
        return 1;
    }
    if (cfg.isolation == Isolation::None)
        std::cerr << "sandboxd: WARNING: --isolation none: sandboxes are NOT isolated. Commands "
                     "run as this user, see the host's files and processes, and reach the "
                     "network.\n";
    if (!manager.cgroupsAvailable()) {
        if (cfg.limits.cgroupLimitsRequired) {
            std::cerr << "sandboxd: memory, process or CPU limits were asked for, but cgroups "
                         "cannot be used here: "
                      << manager.isolation().cgroups << "\n";
            return 1;
        }
        std::cerr << "sandboxd: WARNING: cgroups cannot be used here ("
                  << manager.isolation().cgroups
                  << "): memory and process limits fall back to rlimits, and there is NO CPU "
                     "limit\n";
    }
    if (cfg.limits.diskBytes > 0 && ::geteuid() != 0 && cfg.isolation == Isolation::Bwrap)
        std::cerr << "sandboxd: WARNING: not running as root: workspaces are plain directories "
                     "with no size limit, and sandboxes run as this user\n";
    if (cfg.pool.warmTarget > 0) {
        if (cfg.isolation == Isolation::Bwrap)
            manager.primePool();
        else
            std::cerr << "sandboxd: the warm pool needs --isolation bwrap; WARM_POOL_TARGET is "
                         "ignored\n";
    }
    // The id check and authentication from the head, before a body is read; the server's own
    // refusals in the bridge's error style.
    serverOpts.checkHead = bridgeHeadCheck(manager);
    serverOpts.refusalBody = bridgeRefusalBody;
    // Requests to a preview URL (its Host, or its path form) are forwarded into the sandbox
    // (ports.hpp).
    serverOpts.hijack = previewHijack(manager);
    sandbox::server::ServerOptions previewOpts = serverOpts;
    previewOpts.checkHead = [&manager](const sandbox::server::Request& head) {
        return previewRefusal(manager, head);
    };
    sandbox::server::Server server(io, makeBridgeRouter(manager), std::move(serverOpts));
    try {
        server.listen(listen);
    } catch (const std::exception& e) {
        std::cerr << "sandboxd: cannot listen on " << listen << ": " << e.what() << "\n";
        return 1;
    }
    // Preview traffic only, on a TCP listener of its own (a unix-socket sandboxd's browsers).
    std::optional<sandbox::server::Server> previewServer;
    if (!previewListen.empty()) {
        previewServer.emplace(io, makePreviewOnlyRouter(), std::move(previewOpts));
        try {
            previewServer->listen(previewListen);
        } catch (const std::exception& e) {
            std::cerr << "sandboxd: cannot listen on " << previewListen << ": " << e.what() << "\n";
            return 1;
        }
        if (previewServer->port() == 0) {
            std::cerr << "sandboxd: --preview-listen needs HOST:PORT (browsers reach TCP)\n";
            return 2;
        }
    }
    PortsConfig& ports = manager.ports().config();
    ports.tunnelHost = tunnelHost;
    ports.cloudflared = cloudflared;
    if (!publicUrl.empty())
        ports.previewBase = publicUrl;
    else if (previewServer)
        ports.previewBase = "http://localhost:" + std::to_string(previewServer->port());
    else if (server.port() != 0)
        ports.previewBase = "http://localhost:" + std::to_string(server.port());
    // One line (the SDK's embedded default waits for it): where, and what isolates sandboxes.
    std::string where =
        listen.rfind("unix:", 0) == 0 ? listen : "port " + std::to_string(server.port());
    std::cout << "sandboxd listening on " << where << " (isolation: " << manager.isolation().line()
              << ")" << std::endl;
    if (!ports.previewBase.empty())
        std::cerr << "sandboxd: preview URLs under " << ports.previewBase << std::endl;

    boost::asio::signal_set signals(io, SIGTERM, SIGINT);
    signals.async_wait([&](const boost::system::error_code&, int) {
        server.stop();
        manager.destroyAll();
        io.stop();
    });
    // The embedded default: our parent holds the other end of stdin; when it exits (however
    // it exits), stdin reaches EOF and every sandbox goes with it.
    std::optional<boost::asio::posix::stream_descriptor> parentPipe;
    char drain[64];
    std::function<void()> watchStdin;
    if (exitWithStdin) {
        parentPipe.emplace(io, ::dup(0));
        watchStdin = [&] {
            parentPipe->async_read_some(boost::asio::buffer(drain),
                                        [&](const boost::system::error_code& ec, std::size_t) {
                                            if (ec) {
                                                server.stop();
                                                manager.destroyAll();
                                                io.stop();
                                                return;
                                            }
                                            watchStdin();
                                        });
        };
        watchStdin();
    }
    io.run();
    return 0;
}
