// https: a throwaway CA, server certificates made with the openssl CLI, and a local TLS server
// (Python's http.server in an ssl context) that answers every request with a bridge-style 404.
// Runs once, in the bridge mode.
#include <cstdlib>

#include "sdk/sdk_fixture.hpp"

namespace sandbox::testing::sdk {
namespace {

const char* kServer = R"PY(
import http.server, json, ssl, sys

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = json.dumps({"error": "File not found: " + self.path, "code": "workspace_read_not_found"}).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = answer

    def log_message(self, *args):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("tls test server listening on port %d" % srv.server_address[1], flush=True)
srv.serve_forever()
)PY";

void sh(const std::string& cmd) {
    INFO(cmd);
    REQUIRE(std::system((cmd + " > /dev/null 2>&1").c_str()) == 0);
}

// A key and a certificate for `dns` signed by the CA in `dir`.
void makeServerCert(const std::string& dir, const std::string& name, const std::string& dns) {
    std::string p = dir + "/" + name;
    writeHostFile(p + ".ext",
                  "subjectAltName=DNS:" + dns +
                      "\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                      "extendedKeyUsage=serverAuth\n");
    sh("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + p +
       ".key -out " + p + ".csr -subj /CN=" + dns);
    sh("openssl x509 -req -in " + p + ".csr -CA " + dir + "/ca.pem -CAkey " + dir +
       "/ca.key -CAcreateserial -out " + p + ".pem -days 1 -extfile " + p + ".ext");
}

TEST_CASE("https: a private CA via caFile, untrusted certificates, hostname verification") {
    if (mode() != Mode::Bridge) {
        MESSAGE("the https test runs in the bridge mode only");
        return;
    }
    TempDir dir;
    const std::string d = dir.path();
    sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout " + d +
       "/ca.key -out " + d +
       "/ca.pem -days 1 -subj '/CN=sandbox test CA' -addext basicConstraints=critical,CA:TRUE "
       "-addext "
       "keyUsage=critical,keyCertSign,cRLSign");
    makeServerCert(d, "localhost", "localhost");
    makeServerCert(d, "other", "other.example");
    writeHostFile(d + "/server.py", kServer);
    ServerProcess good("/usr/bin/python3",
                       {d + "/server.py", d + "/localhost.pem", d + "/localhost.key"});
    ServerProcess wrongName("/usr/bin/python3",
                            {d + "/server.py", d + "/other.pem", d + "/other.key"});

    auto options = [&](int port, bool withCa) {
        ClientOptions o;
        o.apiUrl = "https://localhost:" + std::to_string(port);
        o.apiKey = "k";
        if (withCa) o.caFile = d + "/ca.pem";
        o.connectTimeout = 5s;
        return o;
    };

    // Trusted: TLS works, the server's 404 comes back as the typed error it maps to.
    {
        auto sb = getSandbox(Client(options(good.port(), true)), "tls");
        try {
            sb.readFile("/workspace/hello.txt");
            FAIL("no exception");
        } catch (const TransportError& e) {
            FAIL("transport failed: ", e.what());
        } catch (const FileNotFoundError& e) {
            CHECK(e.httpStatus() == 404);
            CHECK(e.code() == "workspace_read_not_found");
        }
        // Several requests over the same client (connection reuse over TLS).
        CHECK_THROWS_AS(sb.readFile("/workspace/again.txt"), FileNotFoundError);
    }
    // Untrusted: the system CAs do not know the throwaway CA. Not retried (it cannot get better).
    {
        auto sb = getSandbox(Client(options(good.port(), false)), "tls");
        auto t0 = std::chrono::steady_clock::now();
        try {
            sb.readFile("/workspace/hello.txt");
            FAIL("no exception");
        } catch (const ConnectionError& e) {
            CHECK(e.code() == "CONNECTION_FAILED");
            CHECK(std::string(e.what()).find("TLS") != std::string::npos);
        }
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    }
    // Trusted CA, but the certificate names another host.
    {
        auto sb = getSandbox(Client(options(wrongName.port(), true)), "tls");
        CHECK_THROWS_AS(sb.readFile("/workspace/hello.txt"), ConnectionError);
    }
    // A CA file that does not exist is a ConnectionError naming it, not a crash.
    {
        ClientOptions o = options(good.port(), true);
        o.caFile = d + "/no-such-ca.pem";
        o.retryBudget = 0ms;
        CHECK_THROWS_AS(getSandbox(Client(o), "tls").readFile("/workspace/x"), ConnectionError);
    }
}

}  // namespace
}  // namespace sandbox::testing::sdk
