#include "daemon/ports.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/time.hpp"
#include "daemon/bridge_http.hpp"
#include "daemon/bridge_routes.hpp"
#include "daemon/sandbox_manager.hpp"
#include "os/process.hpp"
#include "server/async_util.hpp"

namespace sandbox::daemon {
using net::awaitable;
using net::use_awaitable;
using tcp = net::ip::tcp;
using unix_sock = net::local::stream_protocol;

namespace {

// Exposures per sandbox at most (they outlive its launches: a bound on what is kept).
constexpr std::size_t kMaxExposures = 256;

std::string randomString(std::size_t n, std::string_view alphabet) {
    std::string out;
    unsigned char buf[64];
    while (out.size() < n) {
        ssize_t got = ::getrandom(buf, sizeof buf, 0);
        if (got <= 0) throw std::runtime_error("getrandom failed");
        for (ssize_t i = 0; i < got && out.size() < n; ++i) {
            // Rejection sampling: no bias towards the first letters.
            const unsigned limit = 256 - 256 % alphabet.size();
            if (buf[i] < limit) out.push_back(alphabet[buf[i] % alphabet.size()]);
        }
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// An HTTP answer written on a raw connection (the connection is closed after it).
std::string rawJsonAnswer(int status, std::string_view reason, const std::string& message,
                          std::string_view code) {
    std::string body = errorBody(message, code);
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
           "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

awaitable<void> answerAndClose(server::RawStream& s, const std::string& bytes) {
    boost::system::error_code ec;
    co_await s.writeAll(net::buffer(bytes), ec);
    s.close();
}

}  // namespace

namespace {

// `{port}-{id}-{token}`, lower-cased.
std::optional<PreviewHost> parsePreviewLabel(std::string_view raw) {
    std::string label = lower(raw);
    auto first = label.find('-');
    auto last = label.rfind('-');
    if (first == std::string::npos || last == first) return std::nullopt;
    std::string_view portPart = std::string_view(label).substr(0, first);
    if (portPart.size() < 4 || portPart.size() > 5) return std::nullopt;
    unsigned port = 0;
    for (char c : portPart) {
        if (c < '0' || c > '9') return std::nullopt;
        port = port * 10 + static_cast<unsigned>(c - '0');
    }
    PreviewHost out;
    out.port = port;
    out.id = label.substr(first + 1, last - first - 1);
    out.token = label.substr(last + 1);
    if (out.id.empty() || !isValidPortToken(out.token)) return std::nullopt;
    return out;
}

// Whether a URL's host (no port) is an IP address: no preview label can go in front of it.
bool isIpLiteral(std::string_view host) {
    if (!host.empty() && host.front() == '[') return true;
    return !host.empty() && host.find_first_not_of("0123456789.") == std::string_view::npos;
}

}  // namespace

std::optional<PreviewHost> parsePreviewHost(std::string_view host) {
    if (host.empty() || host.front() == '[') return std::nullopt;
    if (auto colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
    auto dot = host.find('.');
    if (dot == std::string_view::npos || dot + 1 >= host.size()) return std::nullopt;
    return parsePreviewLabel(host.substr(0, dot));
}

std::optional<PreviewPath> parsePreviewPath(std::string_view target) {
    if (target.rfind(kPreviewPathPrefix, 0) != 0) return std::nullopt;
    target.remove_prefix(kPreviewPathPrefix.size());
    const auto end = target.find_first_of("/?");
    auto host = parsePreviewLabel(target.substr(0, end));
    if (!host) return std::nullopt;
    PreviewPath out;
    out.host = std::move(*host);
    out.label = std::string(target.substr(0, end));
    if (end != std::string_view::npos) out.rest = std::string(target.substr(end));
    return out;
}

std::string rewritePreviewHead(std::string_view head, std::string_view target) {
    // The request line: METHOD SP TARGET SP VERSION.
    const auto lineEnd = head.find("\r\n");
    const auto sp1 = head.find(' ');
    const auto sp2 = head.rfind(' ', lineEnd);
    if (lineEnd == std::string_view::npos || sp1 == std::string_view::npos || sp2 <= sp1)
        return std::string(head);  // not a request head (the server parsed it: cannot happen)
    std::string out(head.substr(0, sp1 + 1));
    out.append(target);
    out.append(head.substr(sp2, lineEnd - sp2));
    // The headers; hop-by-hop ones replaced by Connection: close, unless this is an upgrade.
    bool upgrade = false;
    std::vector<std::string_view> lines;
    for (auto pos = lineEnd + 2; pos < head.size();) {
        const auto next = head.find("\r\n", pos);
        if (next == std::string_view::npos || next == pos) break;
        std::string_view line = head.substr(pos, next - pos);
        const std::string name = lower(line.substr(0, line.find(':')));
        if (name == "upgrade") upgrade = true;
        lines.push_back(line);
        pos = next + 2;
    }
    for (std::string_view line : lines) {
        const std::string name = lower(line.substr(0, line.find(':')));
        if (!upgrade &&
            (name == "connection" || name == "keep-alive" || name == "proxy-connection"))
            continue;
        out.append("\r\n");
        out.append(line);
    }
    if (!upgrade) out.append("\r\nConnection: close");
    out.append("\r\n\r\n");
    return out;
}

int acceptablePassedSocket(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return 0;
    int domain = 0, type = 0, listening = 1;
    socklen_t len = sizeof domain;
    if (::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0) return 0;
    len = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return 0;
    len = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return 0;
    if ((domain != AF_INET && domain != AF_INET6) || type != SOCK_STREAM || listening) return 0;
    return domain;
}

// ---- live relays ----

std::shared_ptr<LiveRelays::Entry> LiveRelays::add(unsigned port, bool tunnel, server::RawStream* a,
                                                   server::RawStream* b) {
    std::erase_if(entries_, [](const auto& w) { return w.expired(); });
    auto e = std::make_shared<Entry>(Entry{port, tunnel, a, b});
    entries_.push_back(e);
    return e;
}

void LiveRelays::close(std::optional<unsigned> port, std::optional<bool> tunnel) {
    for (auto& w : entries_)
        if (auto e = w.lock())
            if ((!port || e->port == *port) && (!tunnel || e->tunnel == *tunnel)) {
                e->a->close();
                e->b->close();
            }
}

std::size_t LiveRelays::count() {
    std::erase_if(entries_, [](const auto& w) { return w.expired(); });
    return entries_.size();
}

// ---- exposures ----

Exposure PortRegistry::expose(const std::string& id, std::uint64_t runtime, unsigned port,
                              std::optional<std::string> token, std::optional<std::string> name) {
    if (!isExposablePort(port))
        throw PortError{
            400, "INVALID_PORT",
            "Port " + std::to_string(port) + " cannot be exposed: use 1024-65535, except 3000"};
    if (token && !isValidPortToken(*token))
        throw PortError{400, "INVALID_TOKEN",
                        "A port token is 1-16 characters of a-z, 0-9 and _ (got '" + *token + "')"};
    auto& sb = sandboxes_[id];
    if (!sb.exposures.contains(port) && sb.exposures.size() >= kMaxExposures)
        throw PortError{409, "PORT_ALREADY_EXPOSED",
                        "sandbox " + id + " has " + std::to_string(kMaxExposures) +
                            " exposed ports already; unexpose one first"};
    if (token)
        for (const auto& [p, e] : sb.exposures)
            if (p != port && e.token == *token)
                throw PortError{409, "INVALID_TOKEN",
                                "Token '" + *token + "' is already used by port " +
                                    std::to_string(p) + "; each port needs its own"};
    auto it = sb.exposures.find(port);
    if (it == sb.exposures.end()) {
        Exposure e;
        e.port = port;
        e.token = token ? *token : randomString(16, "abcdefghijklmnopqrstuvwxyz0123456789");
        e.createdAt = core::isoTimestampNow();
        it = sb.exposures.emplace(port, std::move(e)).first;
    } else if (token && *token != it->second.token) {
        it->second.token = *token;
        sb.relays.close(port, false);  // the old URL stops working at once
    }
    it->second.runtime = runtime;
    it->second.name = std::move(name);
    return it->second;
}

bool PortRegistry::unexpose(const std::string& id, unsigned port) {
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return false;
    it->second.relays.close(port, false);
    return it->second.exposures.erase(port) > 0;
}

std::vector<Exposure> PortRegistry::active(const std::string& id, std::uint64_t runtime) const {
    std::vector<Exposure> out;
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return out;
    for (const auto& [port, e] : it->second.exposures)
        if (e.runtime == runtime) out.push_back(e);
    return out;
}

const Exposure* PortRegistry::find(const std::string& id, unsigned port) const {
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return nullptr;
    auto e = it->second.exposures.find(port);
    return e == it->second.exposures.end() ? nullptr : &e->second;
}

std::string PortRegistry::urlOf(const std::string& id, const Exposure& e,
                                const std::optional<std::string>& hostname) const {
    const std::string label = std::to_string(e.port) + "-" + id + "-" + e.token;
    std::string base = cfg_.previewBase;
    if (hostname && !hostname->empty()) {
        // The reference's rule: plain http for a local host (with its port), else https.
        std::string h = lower(*hostname);
        std::string hostOnly = h.substr(
            0, h.rfind(':') == std::string::npos || h.back() == ']' ? h.size() : h.rfind(':'));
        std::string port = hostOnly.size() < h.size() ? h.substr(hostOnly.size()) : "";
        if (hostOnly == "127.0.0.1" || hostOnly == "0.0.0.0" || hostOnly == "[::1]")
            hostOnly = "localhost";
        if (hostOnly == "localhost" || hostOnly.ends_with(".localhost"))
            base = "http://" + hostOnly + port;
        else
            base = "https://" + hostOnly + port;
    }
    auto scheme = base.find("://");
    if (scheme == std::string::npos) return "";
    // A host name gets the label in front; an IP address cannot, so the URL takes the path form.
    std::string_view authority = std::string_view(base).substr(scheme + 3);
    authority = authority.substr(0, authority.find('/'));
    if (authority.empty()) return "";
    std::string_view hostOnly = authority.front() == '['
                                    ? authority.substr(0, authority.find(']') + 1)
                                    : authority.substr(0, authority.rfind(':'));
    if (isIpLiteral(hostOnly)) {
        while (!base.empty() && base.back() == '/') base.pop_back();
        return base + std::string(kPreviewPathPrefix) + label + "/";
    }
    return base.substr(0, scheme + 3) + label + "." + base.substr(scheme + 3) + "/";
}

PortRegistry::Check PortRegistry::check(std::string_view hostHeader) const {
    auto host = parsePreviewHost(hostHeader);
    if (!host) return Check{};
    return check(*host);
}

PortRegistry::Check PortRegistry::check(const PreviewHost& host) const {
    Check out;
    out.host = host;
    out.access = Access::InvalidToken;
    const Exposure* e = find(host.id, host.port);
    if (!e || !constantTimeEquals(e->token, host.token)) return out;
    auto sb = mgr_.find(host.id);
    out.access = sb && !sb->dead && sb->runtime == e->runtime ? Access::Active : Access::Stale;
    return out;
}

// ---- forwarding ----

awaitable<void> PortRegistry::forward(std::string id, unsigned port, bool tunnel,
                                      std::unique_ptr<server::RawStream> client, std::string head,
                                      std::string early) {
    auto ex = co_await net::this_coro::executor;
    auto sb = mgr_.find(id);
    if (!sb || sb->dead || !sb->ready) {
        const std::string message = "sandbox " + id + " is not running";
        {
            const std::string answer =
                rawJsonAnswer(502, "Bad Gateway", message, "SANDBOX_NOT_RUNNING");
            co_return co_await answerAndClose(*client, answer);
        }
    }
    unix_sock::socket agent(ex);
    boost::system::error_code ec;
    co_await agent.async_connect(unix_sock::endpoint(sb->connectPath()),
                                 net::redirect_error(use_awaitable, ec));
    if (ec) {
        const std::string message = "the agent of sandbox " + id + " cannot be reached";
        {
            const std::string answer =
                rawJsonAnswer(502, "Bad Gateway", message, "SANDBOX_NOT_RUNNING");
            co_return co_await answerAndClose(*client, answer);
        }
    }
    const std::string connect = "CONNECT 127.0.0.1:" + std::to_string(port) +
                                " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                                "\r\nSandbox-Relay: socket\r\n\r\n";
    co_await net::async_write(agent, net::buffer(connect), net::redirect_error(use_awaitable, ec));
    // The agent's answer: a head (bounded), with the server's socket attached (recvmsg), or,
    // when the agent relays itself, followed by whatever the server sent first.
    std::string reply;
    os::Fd passed;
    std::size_t end = std::string::npos;
    // The agent answers at once (a loopback connect); one that does not is given up on.
    net::steady_timer patience(ex);
    patience.expires_after(std::chrono::seconds(30));
    patience.async_wait([&agent](const boost::system::error_code& e) {
        if (e) return;  // cancelled: the answer came (the socket may be gone by now)
        boost::system::error_code ignored;
        agent.cancel(ignored);
    });
    while (!ec && (end = reply.find("\r\n\r\n")) == std::string::npos && reply.size() < 16384) {
        co_await agent.async_wait(net::socket_base::wait_read,
                                  net::redirect_error(use_awaitable, ec));
        if (ec) break;
        char buf[4096];
        iovec iov{buf, sizeof buf};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        ssize_t n = ::recvmsg(agent.native_handle(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        // Descriptors beyond the one asked for never reach us: the kernel drops what does not
        // fit the control buffer (MSG_CTRUNC).
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c; c = CMSG_NXTHDR(&msg, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
                c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int fd = -1;
                std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
                if (passed)
                    ::close(fd);
                else
                    passed = os::Fd(fd);
            }
        if (n <= 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
    }
    patience.cancel();
    if (end == std::string::npos || reply.compare(0, 13, "HTTP/1.1 200 ") != 0) {
        std::string message =
            "nothing is listening on port " + std::to_string(port) + " in sandbox " + id;
        if (end == std::string::npos) message = "the agent of sandbox " + id + " did not answer";
        {
            const std::string answer =
                rawJsonAnswer(502, "Bad Gateway", message, "PORT_NOT_LISTENING");
            co_return co_await answerAndClose(*client, answer);
        }
    }
    std::unique_ptr<server::RawStream> up;
    if (passed) {
        // The server's socket itself: bytes go between it and the client with no hop through
        // the agent. Checked first: it came from inside the sandbox.
        const int family = acceptablePassedSocket(passed.get());
        tcp::socket s(ex);
        if (family != 0) s.assign(family == AF_INET ? tcp::v4() : tcp::v6(), passed.get(), ec);
        if (family == 0 || ec) {
            const std::string message =
                "the agent of sandbox " + id + " answered with something other than a socket";
            {
                const std::string answer =
                    rawJsonAnswer(502, "Bad Gateway", message, "SANDBOX_AGENT_ERROR");
                co_return co_await answerAndClose(*client, answer);
            }
        }
        passed.release();  // owned by `s` now
        up = server::makeRawStream(std::move(s));
        agent.close(ec);
    } else {
        up = server::makeRawStream(std::move(agent));
    }
    std::string first = head + early;
    if (!first.empty()) co_await up->writeAll(net::buffer(first), ec);
    std::string fromServer = reply.substr(end + 4);  // empty when the socket was passed
    if (!ec && !fromServer.empty()) co_await client->writeAll(net::buffer(fromServer), ec);
    if (ec) co_return;
    // Registered for the time it runs: an unexpose or a destroy closes it.
    auto entry = sandboxes_[id].relays.add(port, tunnel, client.get(), up.get());
    co_await server::relay(*client, *up);
}

// ---- tunnels ----

struct PortRegistry::Tunnel {
    TunnelInfo info;
    std::unique_ptr<tcp::acceptor> acceptor;
    pid_t cloudflared = -1;
    bool open = true;
    void stop() {
        open = false;
        boost::system::error_code ignored;
        acceptor->close(ignored);
        if (cloudflared > 0) {
            // Its own process group (spawnProcess): the group goes, and the kill is immediate,
            // so the blocking wait is short.
            ::kill(-cloudflared, SIGKILL);
            int status = 0;
            ::waitpid(cloudflared, &status, 0);
            os::reapExitCode(cloudflared);  // forgets it (waitpid already reaped: -1)
            cloudflared = -1;
        }
    }
};

namespace {

// Runs `cloudflared tunnel --url http://127.0.0.1:PORT` and waits (30 s at most) for the
// quick tunnel's URL on its standard error.
awaitable<std::string> startCloudflared(const std::string& binary, unsigned localPort, pid_t& pid) {
    auto ex = co_await net::this_coro::executor;
    os::Pipe err = os::Pipe::make();
    os::Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    os::SpawnOptions o;
    o.argv = {binary, "tunnel", "--no-autoupdate", "--url",
              "http://127.0.0.1:" + std::to_string(localPort)};
    o.env = os::environWith({});
    o.fds = {{0, devnull.get()}, {1, devnull.get()}, {2, err.write.get()}};
    pid = os::spawnProcess(o);
    err.write.reset();
    net::posix::stream_descriptor in(ex, err.read.release());
    net::steady_timer deadline(ex);
    deadline.expires_after(std::chrono::seconds(30));
    deadline.async_wait([&](const boost::system::error_code& e) {
        if (!e) in.cancel();
    });
    static const std::regex kUrl(R"(https://[a-z0-9-]+\.trycloudflare\.com)");
    std::string seen;
    char buf[4096];
    for (;;) {
        boost::system::error_code ec;
        std::size_t n =
            co_await in.async_read_some(net::buffer(buf), net::redirect_error(use_awaitable, ec));
        seen.append(buf, n);
        std::smatch m;
        if (std::regex_search(seen, m, kUrl)) {
            deadline.cancel();
            co_return m.str();
        }
        if (ec || seen.size() > 1 << 20) break;
    }
    deadline.cancel();
    throw PortError{502, "TUNNEL_ERROR",
                    "cloudflared did not report a quick tunnel URL: " +
                        seen.substr(seen.size() > 400 ? seen.size() - 400 : 0)};
}

std::string findCloudflared(const std::string& configured) {
    if (configured != "auto") return ::access(configured.c_str(), X_OK) == 0 ? configured : "";
    const char* path = std::getenv("PATH");
    std::string_view rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!rest.empty()) {
        auto colon = rest.find(':');
        std::string dir(rest.substr(0, colon));
        rest = colon == std::string_view::npos ? "" : rest.substr(colon + 1);
        if (dir.empty()) continue;
        std::string candidate = dir + "/cloudflared";
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return "";
}

}  // namespace

awaitable<TunnelInfo> PortRegistry::tunnel(const std::string& id, unsigned port,
                                           std::optional<std::string> name) {
    auto& sb = sandboxes_[id];
    if (auto it = sb.tunnels.find(port); it != sb.tunnels.end()) {
        if (it->second->info.name != name)
            throw PortError{409, "TUNNEL_OPTIONS_MISMATCH",
                            "Tunnel on port " + std::to_string(port) +
                                " was created with different options; destroy it first to "
                                "change them"};
        co_return it->second->info;
    }
    std::string cloudflared;
    if (!cfg_.cloudflared.empty()) {
        cloudflared = findCloudflared(cfg_.cloudflared);
        if (cloudflared.empty())
            throw PortError{502, "CLOUDFLARED_NOT_FOUND",
                            "CLOUDFLARED_NOT_FOUND: cloudflared is not installed (" +
                                cfg_.cloudflared +
                                "); install it or start sandboxd without "
                                "--cloudflared for tunnels on this host"};
    }
    auto ex = co_await net::this_coro::executor;
    auto t = std::make_shared<Tunnel>();
    t->acceptor = std::make_unique<tcp::acceptor>(ex);
    boost::system::error_code ec;
    tcp::endpoint ep(net::ip::make_address(cfg_.tunnelHost, ec), 0);
    if (!ec) t->acceptor->open(ep.protocol(), ec);
    if (!ec) t->acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) t->acceptor->bind(ep, ec);
    if (!ec) t->acceptor->listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        throw PortError{502, "TUNNEL_ERROR",
                        "cannot listen on " + cfg_.tunnelHost + ": " + ec.message()};
    const unsigned local = t->acceptor->local_endpoint().port();
    std::string host = cfg_.tunnelHost.find(':') != std::string::npos ? "[" + cfg_.tunnelHost + "]"
                                                                      : cfg_.tunnelHost;
    t->info.id = randomString(8, "0123456789abcdef");
    t->info.port = port;
    t->info.hostname = host + ":" + std::to_string(local);
    t->info.url = "http://" + t->info.hostname + "/";
    t->info.createdAt = core::isoTimestampNow();
    t->info.name = std::move(name);
    if (!cloudflared.empty()) {
        try {
            std::string url = co_await startCloudflared(cloudflared, local, t->cloudflared);
            t->info.url = url + "/";
            t->info.hostname = url.substr(8);
        } catch (...) {
            t->stop();
            throw;
        }
    }
    // Another get() for this port may have finished while cloudflared started.
    auto& again = sandboxes_[id];
    if (auto it = again.tunnels.find(port); it != again.tunnels.end()) {
        t->stop();
        co_return it->second->info;
    }
    again.tunnels[port] = t;
    net::co_spawn(ex, acceptLoop(id, t), net::detached);
    co_return t->info;
}

awaitable<void> PortRegistry::acceptLoop(std::string id, std::shared_ptr<Tunnel> t) {
    auto ex = co_await net::this_coro::executor;
    while (t->open) {
        tcp::socket s(ex);
        boost::system::error_code ec;
        co_await t->acceptor->async_accept(s, net::redirect_error(use_awaitable, ec));
        if (!t->open) break;
        if (ec) {
            // Out of descriptors: pause rather than spin.
            net::steady_timer pause(ex, std::chrono::milliseconds(100));
            co_await pause.async_wait(net::redirect_error(use_awaitable, ec));
            continue;
        }
        net::co_spawn(ex,
                      forward(id, t->info.port, true, server::makeRawStream(std::move(s)), "", ""),
                      net::detached);
    }
}

std::vector<TunnelInfo> PortRegistry::tunnels(const std::string& id) const {
    std::vector<TunnelInfo> out;
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return out;
    for (const auto& [port, t] : it->second.tunnels) out.push_back(t->info);
    return out;
}

bool PortRegistry::destroyTunnel(const std::string& id, unsigned port) {
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return false;
    auto t = it->second.tunnels.find(port);
    if (t == it->second.tunnels.end()) return false;
    t->second->stop();
    it->second.tunnels.erase(t);
    it->second.relays.close(port, true);
    return true;
}

void PortRegistry::launchEnded(const std::string& id, bool destroyed) {
    auto it = sandboxes_.find(id);
    if (it == sandboxes_.end()) return;
    it->second.relays.close(std::nullopt, std::nullopt);
    if (destroyed) {
        for (auto& [port, t] : it->second.tunnels) t->stop();
        it->second.tunnels.clear();
        if (it->second.exposures.empty()) sandboxes_.erase(it);  // nothing left to remember
    }
}

}  // namespace sandbox::daemon
