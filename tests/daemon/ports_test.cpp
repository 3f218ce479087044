// Exposed ports, preview URLs and tunnels on sandboxd (docs/ports.md): the routes and their
// checks, Host routing with every refusal (404 INVALID_TOKEN, 410 STALE_PREVIEW_URL, 502), the
// proxy streaming both ways (SSE unbuffered, WebSockets, 256 MiB each way byte-exact, 200
// concurrent requests over 10 sandboxes), revocation cutting open connections, tunnels (host
// listeners, cloudflared when configured) ending with their sandbox.
#include <openssl/sha.h>

#include <sys/stat.h>

#include <atomic>
#include <cstring>

#include "client/ws_client.hpp"
#include "daemon_test_util.hpp"
#include "support/loopback.hpp"

namespace sandbox::testing::daemon {
namespace {

// A small HTTP server for sandboxes: GET /x answers "hello /x"; GET /events sends one event,
// then a second once /workspace/go exists; GET /big sends /workspace/big; PUT answers the
// SHA-256 and length of what it received.
const char* kHttpServer = R"PY(
import hashlib, http.server, os, shutil, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def reply(self, body, ctype='text/plain'):
        self.send_response(200)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == '/events':
            self.send_response(200)
            self.send_header('Content-Type', 'text/event-stream')
            self.send_header('Connection', 'close')
            self.end_headers()
            self.wfile.write(b'data: first\n\n'); self.wfile.flush()
            while not os.path.exists('/workspace/go'): time.sleep(0.01)
            self.wfile.write(b'data: second\n\n'); self.wfile.flush()
            self.close_connection = True
            return
        if self.path == '/big':
            self.send_response(200)
            self.send_header('Content-Length', str(os.path.getsize('/workspace/big')))
            self.end_headers()
            with open('/workspace/big', 'rb') as f: shutil.copyfileobj(f, self.wfile, 1 << 20)
            return
        self.reply(b'hello ' + self.path.encode())
    def do_PUT(self):
        left = int(self.headers['Content-Length']); got = 0; h = hashlib.sha256()
        while left > 0:
            b = self.rfile.read(min(left, 1 << 20))
            if not b: break
            h.update(b); left -= len(b); got += len(b)
        self.reply(('%s %d' % (h.hexdigest(), got)).encode())
http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()
)PY";

// A WebSocket echo server on the standard library: each message (fragments joined) comes back
// as "echo:" + it.
const char* kWsServer = R"PY(
import base64, hashlib, socket, struct, sys, threading
def handle(c):
    f = c.makefile('rb'); key = ''
    while True:
        line = f.readline()
        if line in (b'\r\n', b''): break
        k, _, v = line.decode().partition(':')
        if k.strip().lower() == 'sec-websocket-key': key = v.strip()
    acc = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
    c.sendall(('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
               'Sec-WebSocket-Accept: %s\r\n\r\n' % acc).encode())
    while True:
        h = f.read(2)
        if len(h) < 2: break
        op = h[0] & 15; n = h[1] & 127
        if n == 126: n = struct.unpack('>H', f.read(2))[0]
        elif n == 127: n = struct.unpack('>Q', f.read(8))[0]
        mask = f.read(4) if h[1] & 128 else b'\0\0\0\0'
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(f.read(n)))
        if op == 8: c.sendall(b'\x88\x02\x03\xe8'); break
        if op in (1, 2): kind, msg = op, data
        elif op == 0: msg += data
        else: continue
        if not h[0] & 0x80: continue  # fragments until FIN
        out = b'echo:' + msg
        hdr = bytes([0x80 | kind])
        if len(out) < 126: hdr += bytes([len(out)])
        elif len(out) < 65536: hdr += bytes([126]) + struct.pack('>H', len(out))
        else: hdr += bytes([127]) + struct.pack('>Q', len(out))
        c.sendall(hdr + out)
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(64)
while True:
    c, _ = s.accept(); threading.Thread(target=handle, args=(c,), daemon=True).start()
)PY";

std::string sha256Hex(std::string_view data) {
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), d);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned char c : d) {
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
    return out;
}

// The Host of a preview URL ("http://8000-id-token.localhost:PORT/" -> "8000-id-...:PORT").
std::string hostOf(const std::string& url) {
    auto start = url.find("://");
    REQUIRE(start != std::string::npos);
    start += 3;
    return url.substr(start, url.find('/', start) - start);
}

struct Preview {
    DaemonFixture& d;
    client::Endpoint ep = client::Endpoint::parse(d.server.url());
    // A GET through the preview URL `url` on a connection of its own.
    Reply get(const std::string& url, const std::string& path = "/") {
        client::HttpConnection c(ep);
        return call(c, "GET", path, {}, {{"Host", hostOf(url)}});
    }
};

// Starts `script` (python3) on `port` in sandbox `id` and waits until the port answers through
// the agent's port probe.
void startServer(DaemonFixture& d, const std::string& id, const std::string& script, int port,
                 const std::string& name = "srv.py") {
    REQUIRE(call(d.http, "PUT", sandboxPath(id, "/file/workspace/" + name), script).status == 200);
    sh(d.http, id,
       "cd /workspace && setsid python3 " + name + " " + std::to_string(port) + " >/workspace/" +
           name + ".log 2>&1 </dev/null &");
    json watch = {{"port", port}, {"mode", "tcp"}, {"interval", 20}};
    bool ready = false;
    d.http.stream("POST", sandboxPath(id, "/agent/api/port-watch"), watch.dump(), {},
                  [&](std::string_view chunk) {
                      if (chunk.find("\"ready\"") != std::string_view::npos) ready = true;
                      return !ready && chunk.find("\"error\"") == std::string_view::npos;
                  });
    REQUIRE_MESSAGE(ready, "the server in the sandbox did not start");
}

std::string expose(DaemonFixture& d, const std::string& id, int port, json body = json::object()) {
    auto r = call(d.http, "POST", sandboxPath(id, "/port/" + std::to_string(port)), body.dump());
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    return r.body["url"].get<std::string>();
}

bool tcpConnects(const std::string& hostPort) {
    auto colon = hostPort.rfind(':');
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(hostPort.substr(colon + 1))));
    ::inet_pton(AF_INET, hostPort.substr(0, colon).c_str(), &addr.sin_addr);
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

TEST_CASE("ports: the routes check ports, tokens and bodies") {
    DaemonFixture d;
    const std::string id = newSandbox(d.http);
    for (const char* bad : {"3000", "80", "1023", "65536", "abc", "8080.0", "0x1F90", "-8080"}) {
        CAPTURE(bad);
        auto r = call(d.http, "POST", sandboxPath(id, std::string("/port/") + bad), "{}");
        CHECK(r.status == 400);
        CHECK(r.body["code"] == "INVALID_PORT");
        CHECK(call(d.http, "DELETE", sandboxPath(id, std::string("/port/") + bad)).status == 400);
    }
    for (const char* bad : {R"({"token":"UPPER"})", R"({"token":"has-hyphen"})",
                            R"({"token":"seventeen_chars_x"})", R"({"token":""})"}) {
        CAPTURE(bad);
        auto r = call(d.http, "POST", sandboxPath(id, "/port/8080"), bad);
        CHECK(r.status == 400);
        CHECK(r.body["code"] == "INVALID_TOKEN");
    }
    CHECK(call(d.http, "POST", sandboxPath(id, "/port/8080"), R"({"token":5})").status == 400);
    CHECK(call(d.http, "POST", sandboxPath(id, "/port/8080"), "[]").status == 400);
    for (const char* bad :
         {R"({"hostname":"https://x.com"})", R"({"hostname":"x.com/path"})",
          R"({"hostname":"x.com:abc"})", R"({"hostname":""})", R"({"hostname":"a b"})"}) {
        CAPTURE(bad);
        auto r = call(d.http, "POST", sandboxPath(id, "/port/8080"), bad);
        CHECK(r.status == 400);
        CHECK(r.body["code"] == "VALIDATION_FAILED");
    }
    auto dom =
        call(d.http, "POST", sandboxPath(id, "/port/8080"), R"({"hostname":"x.workers.dev"})");
    CHECK(dom.status == 400);
    CHECK(dom.body["code"] == "CUSTOM_DOMAIN_REQUIRED");

    // A custom token; the same token for another port is refused; re-exposing keeps a token.
    auto a = call(d.http, "POST", sandboxPath(id, "/port/8080"), R"({"token":"tok_1","name":"a"})");
    REQUIRE(a.status == 200);
    CHECK(a.body["url"].get<std::string>().find("8080-" + id + "-tok_1.localhost:") !=
          std::string::npos);
    CHECK(a.body["name"] == "a");
    auto dup = call(d.http, "POST", sandboxPath(id, "/port/8081"), R"({"token":"tok_1"})");
    CHECK(dup.status == 409);
    CHECK(dup.body["code"] == "INVALID_TOKEN");
    auto again = call(d.http, "POST", sandboxPath(id, "/port/8080"), "{}");
    CHECK(again.body["url"] == a.body["url"]);
    auto random1 = expose(d, id, 8082);
    CHECK(expose(d, id, 8082) == random1);  // reused, not regenerated
    auto label = hostOf(random1).substr(0, hostOf(random1).find('.'));
    CHECK(label.size() == std::string("8082-").size() + id.size() + 1 + 16);

    // State: exposed, tokens checked, the list; hostname as the reference writes URLs.
    CHECK(call(d.http, "GET", sandboxPath(id, "/port/8080")).body["exposed"] == true);
    CHECK(call(d.http, "GET", sandboxPath(id, "/port/9999")).body["exposed"] == false);
    auto v = [&](const std::string& token) {
        return call(d.http, "POST", sandboxPath(id, "/port/8080/validate"),
                    json{{"token", token}}.dump())
            .body["valid"];
    };
    CHECK(v("tok_1") == true);
    CHECK(v("tok_2") == false);
    CHECK(v("") == false);
    auto list = call(d.http, "GET", sandboxPath(id, "/port?hostname=example.com"));
    REQUIRE(list.body["ports"].size() == 2);
    CHECK(list.body["ports"][0]["url"] == "https://8080-" + id + "-tok_1.example.com/");
    CHECK(list.body["ports"][0]["status"] == "active");
    auto local =
        call(d.http, "POST", sandboxPath(id, "/port/8080"), R"({"hostname":"127.0.0.1:8787"})");
    CHECK(local.body["url"] == "http://8080-" + id + "-tok_1.localhost:8787/");

    // Unexpose is idempotent.
    CHECK(call(d.http, "DELETE", sandboxPath(id, "/port/8080")).status == 204);
    CHECK(call(d.http, "DELETE", sandboxPath(id, "/port/8080")).status == 204);
    CHECK(call(d.http, "GET", sandboxPath(id, "/port/8080")).body["exposed"] == false);
}

TEST_CASE("ports: Host routing and every refusal") {
    DaemonFixture d;
    Preview p{d};
    const std::string id = newSandbox(d.http);
    startServer(d, id, kHttpServer, 8000);
    const std::string url = expose(d, id, 8000);
    auto ok = p.get(url, "/index");
    CHECK(ok.status == 200);
    CHECK(ok.raw == "hello /index");

    // The Host's case does not matter (browsers lower-case it anyway).
    std::string upper = hostOf(url);
    for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    {
        client::HttpConnection c(p.ep);
        CHECK(call(c, "GET", "/", {}, {{"Host", upper}}).status == 200);
    }

    auto host = hostOf(url);
    auto token = host.substr(host.rfind('-') + 1, host.find('.') - host.rfind('-') - 1);
    auto suffix = host.substr(host.find('.'));
    auto refused = [&](const std::string& h, int status, const std::string& code) {
        CAPTURE(h);
        client::HttpConnection c(p.ep);
        auto r = call(c, "GET", "/", {}, {{"Host", h}});
        CHECK(r.status == status);
        CHECK(r.body["code"] == code);
    };
    refused("8000-" + id + "-wrongtoken" + suffix, 404, "INVALID_TOKEN");
    refused("8001-" + id + "-" + token + suffix, 404, "INVALID_TOKEN");  // not exposed
    refused("8000-nosuchsandbox-" + token + suffix, 404, "INVALID_TOKEN");
    // Not preview URLs: sandboxd's own 404.
    for (const char* h :
         {"localhost", "8000.localhost", "80-abc-tok.localhost", "x-y-z.localhost"}) {
        client::HttpConnection c(p.ep);
        checkNotFoundText(call(c, "GET", "/", {}, {{"Host", h}}));
    }

    // Nothing listening on an exposed port: 502, said clearly.
    const std::string quiet = expose(d, id, 8001);
    auto bad = p.get(quiet);
    CHECK(bad.status == 502);
    CHECK(bad.body["code"] == "PORT_NOT_LISTENING");
    CHECK(bad.body["error"].get<std::string>().find("port 8001") != std::string::npos);

    // Revoked: 404 for new requests, and a kept-alive connection is cut at once.
    client::HttpConnection kept(p.ep);
    CHECK(call(kept, "GET", "/one", {}, {{"Host", host}}).raw == "hello /one");
    CHECK(call(d.http, "DELETE", sandboxPath(id, "/port/8000")).status == 204);
    refused(host, 404, "INVALID_TOKEN");
    bool cut = false;
    try {
        auto r = call(kept, "GET", "/two", {}, {{"Host", host}});
        cut = r.status == 404;  // a fresh connection (the client retries an idle one)
    } catch (const std::exception&) {
        cut = true;
    }
    CHECK(cut);

    // Re-exposed, then the sandbox restarts (destroyed and made again): 410 until exposed again,
    // with the same URL.
    const std::string url2 = expose(d, id, 8000);
    CHECK(p.get(url2).status == 200);
    CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
    refused(hostOf(url2), 410, "STALE_PREVIEW_URL");
    sh(d.http, id, "true");  // the sandbox is back, the server is not: still stale
    refused(hostOf(url2), 410, "STALE_PREVIEW_URL");
    CHECK(call(d.http, "GET", sandboxPath(id, "/port")).body["ports"].empty());
    startServer(d, id, kHttpServer, 8000);
    CHECK(expose(d, id, 8000) == url2);
    CHECK(p.get(url2, "/back").raw == "hello /back");
}

TEST_CASE("ports: the proxy streams: SSE unbuffered, WebSockets, 256 MiB each way") {
    DaemonFixture d;
    Preview p{d};
    const std::string id = newSandbox(d.http);
    startServer(d, id, kHttpServer, 8000);
    startServer(d, id, kWsServer, 8765, "ws.py");
    const std::string url = expose(d, id, 8000);

    SUBCASE("server-sent events arrive as they are sent") {
        client::HttpConnection c(p.ep);
        auto head = c.startStream("GET", "/events", {}, {{"Host", hostOf(url)}});
        CHECK(head.status == 200);
        std::string seen, chunk;
        // The server holds the second event until /workspace/go exists: the first must arrive
        // before that, through both relays.
        while (seen.find("data: first") == std::string::npos && c.readChunk(chunk)) seen += chunk;
        CHECK(seen.find("data: first") != std::string::npos);
        CHECK(seen.find("second") == std::string::npos);
        sh(d.http, id, "touch /workspace/go");
        while (seen.find("data: second") == std::string::npos && c.readChunk(chunk)) seen += chunk;
        CHECK(seen.find("data: second") != std::string::npos);
    }

    SUBCASE("a WebSocket is upgraded and echoes both ways") {
        const std::string wsUrl = expose(d, id, 8765);
        client::WebSocketClient ws(p.ep, "/chat", {{"Host", hostOf(wsUrl)}});
        for (std::string msg : {std::string("hi"), std::string(70000, 'x')}) {
            ws.sendText(msg);
            client::WsMessage m;
            REQUIRE(ws.read(m, 30s) == client::WebSocketClient::ReadResult::Message);
            CHECK(m.data.size() == msg.size() + 5);
            CHECK((m.data == "echo:" + msg));
        }
        ws.close();
    }

    SUBCASE("256 MiB down and up, byte-exact") {
        const std::size_t size = 256u << 20;
        auto sum = sh(d.http, id,
                      "head -c " + std::to_string(size) +
                          " /dev/urandom > /workspace/big && sha256sum /workspace/big");
        auto down = p.get(url, "/big");
        CHECK(down.status == 200);
        CHECK(down.raw.size() == size);
        CHECK(sha256Hex(down.raw) == sum.substr(0, 64));
        down = {};
        std::string up(size, '\0');
        std::mt19937_64 rng(42);
        for (std::size_t i = 0; i + 8 <= size; i += 8) {
            auto v = rng();
            std::memcpy(up.data() + i, &v, 8);
        }
        client::HttpConnection c(p.ep);
        auto r = call(c, "PUT", "/upload", up,
                      {{"Host", hostOf(url)}, {"Content-Type", "application/octet-stream"}});
        CHECK(r.status == 200);
        CHECK(r.raw == sha256Hex(up) + " " + std::to_string(size));
    }
}

TEST_CASE("ports: 200 concurrent preview requests across 10 sandboxes") {
    DaemonFixture d;
    Preview p{d};
    std::vector<std::string> urls;
    for (int i = 0; i < 10; ++i) {
        const std::string id = newSandbox(d.http);
        startServer(d, id, kHttpServer, 8000);
        urls.push_back(expose(d, id, 8000));
    }
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 200; ++i)
        threads.emplace_back([&, i] {
            try {
                auto r = p.get(urls[static_cast<std::size_t>(i) % urls.size()],
                               "/r" + std::to_string(i));
                if (r.status == 200 && r.raw == "hello /r" + std::to_string(i)) ++good;
            } catch (const std::exception&) {
            }
        });
    for (auto& t : threads) t.join();
    CHECK(good == 200);
}

TEST_CASE("ports: a preview-only listener serves previews and nothing of the API") {
    DaemonFixture d({}, {"--preview-listen", "127.0.0.1:0"});
    std::string log;
    REQUIRE(waitFor([&] {
        log = d.log();
        return log.find("preview URLs under http://localhost:") != std::string::npos;
    }));
    const int previewPort = std::stoi(log.substr(log.find("http://localhost:") + 17));
    const std::string id = newSandbox(d.http);
    startServer(d, id, kHttpServer, 8000);
    const std::string url = expose(d, id, 8000);
    CHECK(url.ends_with(".localhost:" + std::to_string(previewPort) + "/"));
    client::HttpConnection pc(
        client::Endpoint::parse("http://127.0.0.1:" + std::to_string(previewPort)));
    CHECK(call(pc, "GET", "/p", {}, {{"Host", hostOf(url)}}).raw == "hello /p");
    // The API is not served there (fresh connections: a connection that carried preview
    // traffic is the sandbox's for its whole life).
    auto fresh = [&] {
        return client::HttpConnection(
            client::Endpoint::parse("http://127.0.0.1:" + std::to_string(previewPort)));
    };
    for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
             {"GET", "/v1/sandbox/" + id + "/port"}, {"POST", "/v1/sandbox"}, {"GET", "/health"}}) {
        auto c = fresh();
        checkNotFoundText(call(c, method, target, "{}"));
    }
}

TEST_CASE("ports: --public-url writes the URLs users reach sandboxd by") {
    DaemonFixture d({}, {"--public-url", "https://preview.example.com/"});
    const std::string id = newSandbox(d.http);
    startServer(d, id, kHttpServer, 8000);
    const std::string url = expose(d, id, 8000);
    CHECK(url.rfind("https://8000-" + id + "-", 0) == 0);
    CHECK(url.ends_with(".preview.example.com/"));
    // The Host decides, whatever listener the request came in by (a TLS front in front of
    // sandboxd forwards it as is).
    client::HttpConnection c(client::Endpoint::parse(d.server.url()));
    CHECK(call(c, "GET", "/q", {}, {{"Host", hostOf(url)}}).raw == "hello /q");
}

// The path form, /preview/{port}-{id}-{token}/..., for clients that cannot set Host and for a
// sandboxd reached by an IP address (its URLs take this form then).
TEST_CASE("ports: the path form of preview URLs") {
    DaemonFixture d({}, {"--public-url", "http://127.0.0.1:8080"});
    const std::string id = newSandbox(d.http);
    startServer(d, id, kHttpServer, 8000);
    const std::string url = expose(d, id, 8000);
    const std::string prefix = "http://127.0.0.1:8080/preview/8000-" + id + "-";
    REQUIRE(url.rfind(prefix, 0) == 0);
    REQUIRE(url.back() == '/');
    const std::string path =
        url.substr(std::string("http://127.0.0.1:8080").size());  // /preview/L/
    const std::string label = path.substr(9, path.size() - 10);
    const int port = d.server.port();

    // The server in the sandbox is asked for what follows the label, query included. (Each
    // request on a connection of its own: the path form closes them, see below.)
    auto get = [&](const std::string& target) {
        client::HttpConnection c(client::Endpoint::parse(d.server.url()));
        return call(c, "GET", target);
    };
    auto r = get(path + "q?x=1");
    CHECK(r.status == 200);
    CHECK(r.raw == "hello /q?x=1");
    CHECK(get(path).raw == "hello /");
    // Without the slash after the label: sent to the URL with it.
    for (const std::string& tail : {std::string(), std::string("?a=b")}) {
        auto redirect = rawHttp(port, "GET /preview/" + label + tail +
                                          " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        CHECK(rawStatus(redirect) == 308);
        CHECK(redirect.find("\r\nLocation: /preview/" + label + "/" + tail + "\r\n") !=
              std::string::npos);
    }
    // A later request on the connection would reach the server with the prefix still in its
    // path, so each is made on a connection of its own: a request that asks to keep the
    // connection alive gets its answer, then the end of the connection (not a 30 s wait).
    bool closed = false;
    auto kept = rawHttp(
        port, "GET " + path + "a HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", &closed);
    CHECK(closed);
    CHECK(rawStatus(kept) == 200);
    CHECK(kept.find("hello /a") != std::string::npos);
    // A WebSocket through the path form.
    startServer(d, id, kWsServer, 8765, "ws.py");
    const std::string wsUrl = expose(d, id, 8765);
    const std::string wsPath = wsUrl.substr(std::string("http://127.0.0.1:8080").size());
    {
        client::WebSocketClient ws(client::Endpoint::parse(d.server.url()), wsPath + "chat", {});
        ws.sendText("over the path");
        client::WsMessage m;
        REQUIRE(ws.read(m, std::chrono::seconds(30)) ==
                client::WebSocketClient::ReadResult::Message);
        CHECK(m.data == "echo:over the path");
        ws.close();
    }
    // The refusals of the Host form: a wrong token, a revoked one.
    const std::string wrong = "/preview/8000-" + id + "-wrongtoken/";
    r = get(wrong);
    CHECK(r.status == 404);
    CHECK(r.body["code"] == "INVALID_TOKEN");
    CHECK(call(d.http, "DELETE", sandboxPath(id, "/port/8000")).status == 204);
    r = get(path);
    CHECK(r.status == 404);
    CHECK(r.body["code"] == "INVALID_TOKEN");
    // A path that only looks like one is the API's (404), not a preview.
    CHECK(get("/preview/not-a-label/").status == 404);
}

TEST_CASE("tunnels: a host listener per port, idempotent, ended by destroy and by the sandbox") {
    DaemonFixture d;
    const std::string id = newSandbox(d.http);
    startServer(d, id, kHttpServer, 8000);
    auto t = call(d.http, "POST", sandboxPath(id, "/tunnel/8000"), "");
    REQUIRE_MESSAGE(t.status == 200, t.raw);
    CHECK(t.body["id"].get<std::string>().size() == 8);
    CHECK(t.body["port"] == 8000);
    CHECK(!t.body.contains("name"));
    CHECK(t.body["createdAt"].is_string());
    const std::string hostPort = t.body["hostname"];
    CHECK(hostPort.rfind("127.0.0.1:", 0) == 0);
    CHECK(t.body["url"] == "http://" + hostPort + "/");
    auto page = rawHttp(std::stoi(hostPort.substr(10)),
                        "GET /t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(rawBody(page) == "hello /t");
    // Idempotent; other options are refused; listed.
    CHECK(call(d.http, "POST", sandboxPath(id, "/tunnel/8000"), "").raw == t.raw);
    auto other = call(d.http, "POST", sandboxPath(id, "/tunnel/8000"), R"({"name":"app"})");
    CHECK(other.status == 502);
    CHECK(other.body["code"] == "tunnel_error");
    CHECK(other.body["error"].get<std::string>().find("created with different options") !=
          std::string::npos);
    auto named = call(d.http, "POST", sandboxPath(id, "/tunnel/8001"), R"({"name":"app"})");
    CHECK(named.body["name"] == "app");
    auto list = call(d.http, "GET", sandboxPath(id, "/tunnel"));
    CHECK(list.body["tunnels"].size() == 2);
    // Destroyed: the listener is gone; again: no error.
    CHECK(call(d.http, "DELETE", sandboxPath(id, "/tunnel/8000")).status == 204);
    CHECK_FALSE(tcpConnects(hostPort));
    CHECK(call(d.http, "DELETE", sandboxPath(id, "/tunnel/8000")).status == 204);
    // The sandbox destroyed: its tunnels end with it.
    const std::string namedHost = named.body["hostname"];
    CHECK(tcpConnects(namedHost));
    CHECK(call(d.http, "DELETE", sandboxPath(id)).status == 204);
    CHECK_FALSE(tcpConnects(namedHost));
    CHECK(call(d.http, "GET", sandboxPath(id, "/tunnel")).body["tunnels"].empty());
}

TEST_CASE("tunnels: cloudflared when configured, CLOUDFLARED_NOT_FOUND without it") {
    {
        DaemonFixture d({}, {"--cloudflared", "/nonexistent/cloudflared"});
        const std::string id = newSandbox(d.http);
        auto r = call(d.http, "POST", sandboxPath(id, "/tunnel/8000"), "");
        CHECK(r.status == 502);
        CHECK(r.body["code"] == "tunnel_error");
        CHECK(r.body["error"].get<std::string>().find("CLOUDFLARED_NOT_FOUND") !=
              std::string::npos);
    }
    // A stand-in cloudflared: prints a quick tunnel's URL as cloudflared does, then waits.
    TempDir dir;
    const std::string fake = dir.path() + "/cloudflared";
    // It records its pid first: the URL is printed before the exec, so sandboxd may answer
    // while the process is still the shell; the pid is the same before and after the exec.
    writeFile(fake, "#!/bin/sh\necho $$ > " + dir.path() + "/pid\necho \"$@\" > " + dir.path() +
                        "/args\necho 'INF |  https://brave-quiet-fox.trycloudflare.com  |' >&2\n"
                        "exec sleep 600\n");
    ::chmod(fake.c_str(), 0755);
    DaemonFixture d({}, {"--cloudflared", fake});
    const std::string id = newSandbox(d.http);
    auto r = call(d.http, "POST", sandboxPath(id, "/tunnel/8000"), "");
    REQUIRE_MESSAGE(r.status == 200, r.raw);
    CHECK(r.body["url"] == "https://brave-quiet-fox.trycloudflare.com/");
    CHECK(r.body["hostname"] == "brave-quiet-fox.trycloudflare.com");
    auto args = readFile(dir.path() + "/args");
    CHECK(args.find("tunnel --no-autoupdate --url http://127.0.0.1:") != std::string::npos);
    const pid_t tunnelPid = std::stoi(readFile(dir.path() + "/pid"));
    auto running = [&] {
        for (const auto& c : childrenOf(d.pid()))
            if (c.pid == tunnelPid && c.state != 'Z') return true;
        return false;
    };
    CHECK(running());
    CHECK(call(d.http, "DELETE", sandboxPath(id, "/tunnel/8000")).status == 204);
    // Killed and reaped before the answer: no child with that pid, not even a zombie.
    for (const auto& c : childrenOf(d.pid())) CHECK(c.pid != tunnelPid);
}

}  // namespace sandbox::testing::daemon

namespace sandbox::testing::daemon {

// The attack: a preview URL (or a tunnel) of a port where nothing listens in the sandbox but
// a service of the host listens on the host's loopback. Were the proxy to connect from the
// host, the sandbox's URL would reach the host's service. It connects inside the sandbox's
// network namespace (the agent's CONNECT relay), so the answer is 502.
TEST_CASE("escape: preview URLs and tunnels never reach the host's loopback") {
    GreetingService host("host-service");
    const int hostPort = host.port();
    DaemonFixture d;
    Preview p{d};
    const std::string id = newSandbox(d.http);
    const std::string url = expose(d, id, hostPort);
    auto r = p.get(url);
    CHECK(r.status == 502);
    CHECK(r.body["code"] == "PORT_NOT_LISTENING");
    auto t = call(d.http, "POST", sandboxPath(id, "/tunnel/" + std::to_string(hostPort)), "");
    REQUIRE(t.status == 200);
    const std::string tunnelHost = t.body["hostname"];
    auto viaTunnel = rawHttp(std::stoi(tunnelHost.substr(tunnelHost.rfind(':') + 1)),
                             "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK(rawStatus(viaTunnel) == 502);
    CHECK(host.accepted == 0);
}

}  // namespace sandbox::testing::daemon
