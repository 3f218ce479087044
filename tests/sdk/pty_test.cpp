// Sandbox::terminal() over every transport: the agent's /ws/pty, sandboxd's /pty (bridge,
// narrow bridge, embedded default). Output as a pull range and as a callback, resize, exit
// codes, replay on reconnect, session binding, auth.
#include <atomic>
#include <filesystem>
#include <mutex>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

// Reads output until it contains `needle` (bounded).
bool readUntil(Pty& pty, std::string& seen, const std::string& needle,
               std::chrono::milliseconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (seen.find(needle) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        std::optional<std::string> chunk;
        try {
            chunk = pty.read(left);
        } catch (const TimeoutError&) {
            return false;
        }
        if (!chunk) return false;
        seen += *chunk;
    }
    return true;
}

TEST_CASE("terminal: size, resize, and the exit code") {
    auto sb = freshSandbox("pty");
    auto pty = sb.terminal({.cols = 100, .rows = 30});
    std::string out;
    pty.write("stty size; echo ok-$((2+3))\n");
    CHECK(readUntil(pty, out, "30 100"));
    CHECK(readUntil(pty, out, "ok-5"));
    pty.resize(140, 45);
    pty.write("stty size\n");
    CHECK(readUntil(pty, out, "45 140"));
    CHECK_THROWS_AS(pty.resize(0, 10), ValidationFailedError);
    pty.write("exit 3\n");
    CHECK(pty.wait(30s) == std::optional<int>(3));
    CHECK(pty.exitCode() == std::optional<int>(3));
    CHECK(pty.ended());
    CHECK_FALSE(pty.read().has_value());
    CHECK_THROWS_AS(pty.write("x"), StreamLostError);
}

TEST_CASE("terminal: output as a pull range and as a callback; replay on reconnect") {
    auto sb = freshSandbox("pty");
    {
        auto pty = sb.terminal();
        pty.write("echo range-$((4*4)); exit 0\n");
        std::string all;
        for (const std::string& chunk : pty) all += chunk;
        CHECK(all.find("range-16") != std::string::npos);
        CHECK(pty.exitCode() == std::optional<int>(0));
    }
    auto s = isNarrow() ? sb.getSession("pty-cb") : sb.createSession({.id = "pty-cb"});
    {
        // Declared before the terminal: the callback may run until the Pty is destroyed.
        std::mutex m;
        std::string seen;
        auto pty = s.terminal();
        CHECK(pty.sessionId() == "pty-cb");
        pty.onOutput([&](std::string_view chunk) {
            std::lock_guard lock(m);
            seen.append(chunk);
        });
        pty.write("echo callback-$((9+9))-marker\n");
        CHECK(eventually(
            [&] {
                std::lock_guard lock(m);
                return seen.find("callback-18-marker") != std::string::npos;
            },
            30s));
    }  // disconnected; the shell keeps running
    auto again = s.terminal();
    std::string out;
    CHECK(readUntil(again, out, "callback-18-marker"));  // replayed
    again.write("echo $$ > /dev/null; exit 4\n");
    CHECK(again.wait(30s) == std::optional<int>(4));
}

TEST_CASE("terminal: connections are released (no descriptors or threads left behind)") {
    auto sb = freshSandbox("pty");
    auto openFds = [] {
        return std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                             std::filesystem::directory_iterator());
    };
    auto threads = [] {
        return std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                             std::filesystem::directory_iterator());
    };
    sb.terminal().close();  // warm-up (the first use may open the sandbox)
    auto fds = openFds();
    auto tasks = threads();
    for (int i = 0; i < 20; ++i) {
        auto pty = sb.terminal();
        if (i % 2) pty.write("echo x\n");  // some with output in flight
    }
    CHECK(openFds() == fds);
    // Every io thread has been joined when its Pty is gone, but the kernel lists a joined
    // thread in /proc/self/task until it has finished exiting (the join wakes on the tid
    // being cleared, a moment before the task is released): wait for that moment, bounded.
    CHECK(eventually([&] { return threads() == tasks; }, 10s));
}

TEST_CASE("terminal: bad options and auth") {
    auto sb = freshSandbox("pty");
    CHECK_THROWS_AS(sb.terminal({.cols = 0}), ValidationFailedError);
    if (!isTcpBridge()) return;
    ClientOptions o = clientOptions();
    o.apiKey = "wrong";
    auto bad = getSandbox(Client(o), uniqueName("ptykey"));
    try {
        bad.terminal();
        FAIL("no exception");
    } catch (const AuthenticationError& e) {
        CHECK(e.httpStatus() == 401);
    }
}

}  // namespace
}  // namespace sandbox::testing::sdk

namespace sandbox::testing::sdk {
namespace {

// A TLS front for the bridge: terminates TLS with a certificate of a throwaway CA and relays
// the bytes to sandboxd's plain port (so the terminal's WebSocket runs as wss://).
const char* kTlsRelay = R"PY(
import socket, ssl, sys, threading

backend = int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(16)
print("tls relay listening on port %d" % srv.getsockname()[1], flush=True)

def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def serve(conn):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (OSError, ssl.SSLError):
        conn.close()
        return
    up = socket.create_connection(("127.0.0.1", backend))
    threading.Thread(target=pipe, args=(tls, up), daemon=True).start()
    pipe(up, tls)

while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)PY";

void run(const std::string& cmd) {
    INFO(cmd);
    REQUIRE(std::system((cmd + " > /dev/null 2>&1").c_str()) == 0);
}

TEST_CASE("terminal over https (wss) with the client's caFile") {
    if (mode() != Mode::Bridge) {
        MESSAGE("the wss terminal test runs in the bridge mode only");
        return;
    }
    TempDir dir;
    const std::string d = dir.path();
    run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d +
        "/ca.key -out " + d +
        "/ca.pem -days 1 -subj '/CN=pty test CA' -addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign,cRLSign");
    writeHostFile(d + "/srv.ext",
                  "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
                  "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
    run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d +
        "/srv.key -out " + d + "/srv.csr -subj /CN=localhost");
    run("openssl x509 -req -in " + d + "/srv.csr -CA " + d + "/ca.pem -CAkey " + d +
        "/ca.key -CAcreateserial -out " + d + "/srv.pem -days 1 -extfile " + d + "/srv.ext");
    writeHostFile(d + "/relay.py", kTlsRelay);
    std::string backend = backendUrl();
    std::string backendPort = backend.substr(backend.rfind(':') + 1);
    ServerProcess relay("/usr/bin/python3",
                        {d + "/relay.py", d + "/srv.pem", d + "/srv.key", backendPort});

    ClientOptions o = clientOptions();
    o.apiUrl = "https://localhost:" + std::to_string(relay.port());
    o.caFile = d + "/ca.pem";
    auto sb = getSandbox(Client(o), uniqueName("wss"));
    auto pty = sb.terminal({.cols = 77, .rows = 11});
    std::string out;
    pty.write("stty size; echo wss-$((5*5))\n");
    CHECK(readUntil(pty, out, "11 77"));
    CHECK(readUntil(pty, out, "wss-25"));
    pty.write("exit 6\n");
    CHECK(pty.wait(30s) == std::optional<int>(6));

    // Without the CA the certificate is not trusted: a ConnectionError naming TLS.
    o.caFile.clear();
    try {
        getSandbox(Client(o), uniqueName("wss")).terminal();
        FAIL("no exception");
    } catch (const ConnectionError& e) {
        CHECK(std::string(e.what()).find("TLS") != std::string::npos);
    }
}

}  // namespace
}  // namespace sandbox::testing::sdk
