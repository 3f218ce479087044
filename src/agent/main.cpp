// sandbox-agent: the sandbox container's control plane (the container API of
// docs/agent.md), wire-compatible with the reference server.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "agent/agent.hpp"
#include "agent/relay.hpp"
#include "agent/routes.hpp"
#include "sandbox/version.hpp"
#include "server/http_server.hpp"

namespace {

void usage(std::ostream& os) {
    os << "usage: sandbox-agent --listen HOST:PORT|unix:PATH|fd:N [--workspace DIR]\n"
          "       sandbox-agent --version\n"
          "\n"
          "Serves the sandbox container API (sessions, exec, files, processes) in place.\n"
          "  --listen      where to listen: HOST:PORT (PORT 0 picks a free port), unix:PATH, or\n"
          "                fd:N (an inherited listening socket, as sandboxd hands over)\n"
          "  --workspace   the sessions' starting directory (default /workspace)\n"
          "  --runtime-dir a private directory for the agent's named pipes (made if missing,\n"
          "                mode 0700; default: a new directory in $TMPDIR or /tmp, removed at\n"
          "                exit)\n"
          "Environment: SANDBOX_VERSION (reported by /api/version), COMMAND_TIMEOUT_MS (default\n"
          "timeout of foreground commands in sessions), INTERPRETER_POOL_SIZE (code executors\n"
          "kept started per language once it is used; default 1, 0 = none),\n"
          "SANDBOX_INTERPRETER_PYTHON / SANDBOX_INTERPRETER_NODE (the runtimes; default\n"
          "/usr/bin/python3 and /usr/bin/node, else PATH).\n";
}

}  // namespace

int main(int argc, char** argv) {
    std::string listen, workspace = "/workspace", runtimeDir;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* name) -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "sandbox-agent: " << name << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--listen")
            listen = value("--listen");
        else if (a.rfind("--listen=", 0) == 0)
            listen = a.substr(9);
        else if (a == "--workspace")
            workspace = value("--workspace");
        else if (a == "--runtime-dir")
            runtimeDir = value("--runtime-dir");
        else if (a.rfind("--workspace=", 0) == 0)
            workspace = a.substr(12);
        else if (a == "-h" || a == "--help") {
            usage(std::cout);
            return 0;
        } else if (a == "--version") {
            std::cout << "sandbox-agent " << SANDBOX_VERSION_STRING << "\n";
            return 0;
        } else {
            std::cerr << "sandbox-agent: unknown argument '" << a << "'\n";
            usage(std::cerr);
            return 2;
        }
    }
    if (listen.empty()) {
        std::cerr << "sandbox-agent: --listen is required\n";
        usage(std::cerr);
        return 2;
    }
    ::signal(SIGPIPE, SIG_IGN);
    // As a sandbox's init (pid 1 of its pid namespace, as sandboxd starts it) the agent is the
    // sandbox's control plane and must outlive anything the sandbox runs: the kernel already
    // drops SIGKILL and SIGSTOP sent to an init from inside its namespace; no handler is
    // installed for SIGTERM or SIGINT (so those are dropped too), and the process is made
    // non-dumpable, so that nothing inside can trace it, read its memory or take its sockets
    // (ptrace, process_vm_readv, /proc/1/mem, pidfd_getfd).
    const bool sandboxInit = ::getpid() == 1;
    if (sandboxInit) ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

    sandbox::agent::AgentConfig cfg;
    cfg.workspace = workspace;
    if (const char* pool = std::getenv("INTERPRETER_POOL_SIZE"); pool && *pool) {
        char* end = nullptr;
        long n = std::strtol(pool, &end, 10);
        if (*end || n < 0 || n > 64) {
            std::cerr << "sandbox-agent: INTERPRETER_POOL_SIZE must be 0-64\n";
            return 2;
        }
        cfg.interpreterPool = static_cast<int>(n);
    }
    // The named pipes' directory: given, or a fresh one of our own (removed when we exit).
    bool ownRuntimeDir = runtimeDir.empty();
    if (ownRuntimeDir) {
        const char* tmp = std::getenv("TMPDIR");
        std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/sandbox-agent-XXXXXX";
        if (!::mkdtemp(tmpl.data())) {
            std::cerr << "sandbox-agent: cannot create a runtime directory in " << tmpl << ": "
                      << std::strerror(errno) << "\n";
            return 1;
        }
        runtimeDir = tmpl;
    } else if (::mkdir(runtimeDir.c_str(), 0700) != 0 && errno != EEXIST) {
        std::cerr << "sandbox-agent: cannot create " << runtimeDir << ": " << std::strerror(errno)
                  << "\n";
        return 1;
    }
    cfg.runtimeDir = runtimeDir;
    struct RemoveRuntimeDir {
        const std::string* dir;
        ~RemoveRuntimeDir() {
            if (dir) {
                std::error_code ec;
                std::filesystem::remove_all(*dir, ec);
            }
        }
    } removeRuntimeDir{ownRuntimeDir ? &runtimeDir : nullptr};
    if (const char* v = std::getenv("SANDBOX_VERSION")) cfg.version = v;
    if (const char* t = std::getenv("COMMAND_TIMEOUT_MS")) {
        long long ms = std::atoll(t);
        if (ms > 0) cfg.defaultCommandTimeoutMs = ms;
    }

    boost::asio::io_context io(1);
    sandbox::agent::Agent agent(io.get_executor(), cfg);
    // Orphans of background processes (double forks, setsid) reparent to the agent, so a kill
    // can find them and nothing is left as a zombie.
    sandbox::agent::enableSubreaper(io.get_executor());
    // CONNECT requests are the port relay (relay.hpp); everything else is the container API.
    sandbox::server::Server server(
        io, sandbox::agent::makeRouter(agent),
        {.serverName = "sandbox-agent", .hijack = sandbox::agent::connectRelay()});
    try {
        server.listen(listen);
    } catch (const std::exception& e) {
        std::cerr << "sandbox-agent: cannot listen on " << listen << ": " << e.what() << "\n";
        return 1;
    }
    if (listen.rfind("unix:", 0) == 0 || listen.rfind("fd:", 0) == 0)
        std::cout << "sandbox-agent listening on " << listen << std::endl;
    else
        std::cout << "sandbox-agent listening on port " << server.port() << std::endl;

    boost::asio::signal_set signals(io);
    if (!sandboxInit) {
        signals.add(SIGTERM);
        signals.add(SIGINT);
        signals.async_wait([&](const boost::system::error_code&, int) {
            server.stop();
            agent.shutdown();
            io.stop();
        });
    }
    io.run();
    return 0;
}
