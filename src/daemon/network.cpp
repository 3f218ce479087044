#include "daemon/network.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio.hpp>
#include <chrono>
#include <stdexcept>

#include "os/process.hpp"

namespace sandbox::daemon {
namespace net = boost::asio;
using core::wire::NetworkPolicy;
using core::wire::NetworkRule;
using net::awaitable;
using net::use_awaitable;

namespace {

struct Range {
    std::uint32_t address;
    int prefix;
};

// Not the internet: this host and its networks, whatever the policy's broad ranges say.
const Range kPrivate[] = {{0x00000000, 8},  {0x0A000000, 8},  {0x64400000, 10},
                          {0x7F000000, 8},  {0xA9FE0000, 16}, {0xAC100000, 12},
                          {0xC0A80000, 16}, {0xE0000000, 4},  {0xF0000000, 4}};

std::uint32_t maskOf(int prefix) {
    return prefix == 0 ? 0 : ~std::uint32_t(0) << (32 - prefix);
}

bool inside(const NetworkRule& r, const Range& range) {
    return r.prefix >= range.prefix && (r.address & maskOf(range.prefix)) == range.address;
}

bool insidePrivate(const NetworkRule& r) {
    for (const auto& range : kPrivate)
        if (inside(r, range)) return true;
    return false;
}

std::string cidr(std::uint32_t a, int prefix) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." +
           std::to_string((a >> 8) & 255) + "." + std::to_string(a & 255) + "/" +
           std::to_string(prefix);
}

std::string ports(const NetworkRule& r) {
    return r.portFirst == r.portLast
               ? std::to_string(r.portFirst)
               : std::to_string(r.portFirst) + "-" + std::to_string(r.portLast);
}

std::string findProgram(const char* name) {
    for (const char* dir : {"/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/"}) {
        std::string p = std::string(dir) + name;
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// Reads what is in a non-blocking pipe now (a failed tool's message).
std::string drain(int fd) {
    std::string out;
    char buf[4096];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0 && out.size() < 8192;)
        out.append(buf, static_cast<std::size_t>(n));
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
}

// Waits (asynchronously) for `pid` to exit, at most `limit`; kills it when it does not.
awaitable<int> waitExit(pid_t pid, std::chrono::milliseconds limit) {
    auto ex = co_await net::this_coro::executor;
    net::posix::stream_descriptor pidfd(ex, os::openPidFd(pid).release());
    net::steady_timer timer(ex);
    timer.expires_after(limit);
    bool timedOut = false;
    timer.async_wait([&](const boost::system::error_code& e) {
        if (e) return;
        timedOut = true;
        ::kill(pid, SIGKILL);
    });
    boost::system::error_code ec;
    co_await pidfd.async_wait(net::posix::descriptor_base::wait_read,
                              net::redirect_error(use_awaitable, ec));
    timer.cancel();
    int status = 0;
    ::waitpid(pid, &status, 0);
    os::forgetChild(pid);
    if (timedOut) co_return -1;
    co_return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

std::string nftRuleset(const NetworkPolicy& policy) {
    // Refusals are immediate: a TCP reset (the program sees "connection refused"), an ICMP
    // "administratively prohibited" for the rest.
    auto reject = [](const std::string& match) {
        return "    " + match + "meta l4proto tcp reject with tcp reset\n    " + match +
               "reject with icmpx type admin-prohibited\n";
    };
    std::string r =
        "table inet sandbox {\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy drop;\n"
        "    oif \"lo\" accept\n"
        "    ct state established,related accept\n" +
        reject("meta nfproto ipv6 ");
    for (const auto& rule : policy.allow)
        if (rule.kind == NetworkRule::Kind::Dns)
            r += "    ip daddr 10.0.2.3 udp dport 53 accept\n"
                 "    ip daddr 10.0.2.3 tcp dport 53 accept\n";
    for (const auto& rule : policy.allow)
        if (rule.kind == NetworkRule::Kind::HostLoopback)
            r += "    ip daddr 10.0.2.2 tcp dport " + ports(rule) + " accept\n";
    r += reject("ip daddr 10.0.2.0/24 ");
    auto allowRule = [&](const NetworkRule& rule) {
        r += "    ip daddr " + cidr(rule.address, rule.prefix) + " tcp dport " + ports(rule) +
             " accept\n";
    };
    for (const auto& rule : policy.allow)
        if (rule.kind == NetworkRule::Kind::Cidr && insidePrivate(rule)) allowRule(rule);
    std::string ranges = "ip daddr { ";
    for (std::size_t i = 0; i < std::size(kPrivate); ++i)
        ranges += (i ? ", " : "") + cidr(kPrivate[i].address, kPrivate[i].prefix);
    r += reject(ranges + " } ");
    for (const auto& rule : policy.allow)
        if (rule.kind == NetworkRule::Kind::Cidr && !insidePrivate(rule)) allowRule(rule);
    // Named hosts: their addresses, public by construction (resolveNames), and after the
    // refusal of the private ranges whatever they are.
    for (const auto& rule : policy.allow)
        if (rule.kind == NetworkRule::Kind::Host)
            for (std::uint32_t a : rule.addresses)
                r += "    ip daddr " + cidr(a, 32) + " tcp dport " + ports(rule) + " accept\n";
    r += reject("") + "  }\n}\n";
    return r;
}

std::string hostsFile(const NetworkPolicy& policy) {
    std::string out = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";
    if (policy.has(NetworkRule::Kind::HostLoopback))
        out += std::string("10.0.2.2 ") + kHostLoopbackName + "\n";
    for (const auto& rule : policy.allow)
        if (rule.kind == NetworkRule::Kind::Host)
            for (std::uint32_t a : rule.addresses)
                out += core::wire::ipv4Text(a) + " " + rule.host + "\n";
    return out;
}

bool isPublicAddress(std::uint32_t address) {
    NetworkRule one;
    one.address = address;
    one.prefix = 32;
    return !insidePrivate(one);
}

namespace {

// Takes the IPv4 addresses of a resolution into `rule`, or says why the name cannot be used.
std::optional<NameProblem> checkResolved(NetworkRule& rule,
                                         const net::ip::tcp::resolver::results_type& results,
                                         const boost::system::error_code& ec) {
    rule.addresses.clear();
    if (!ec)
        for (const auto& entry : results) {
            const auto address = entry.endpoint().address();
            if (!address.is_v4()) continue;
            const std::uint32_t a = address.to_v4().to_uint();
            if (!isPublicAddress(a)) {
                const std::string text = core::wire::ipv4Text(a);
                return NameProblem{"NETWORK_HOST_NOT_PUBLIC",
                                   rule.host + " resolves to " + text +
                                       ", which is not a public address: a name opens public "
                                       "addresses only; allow the address itself (" +
                                       text + ":PORT) if it is meant"};
            }
            if (std::find(rule.addresses.begin(), rule.addresses.end(), a) == rule.addresses.end())
                rule.addresses.push_back(a);
        }
    if (rule.addresses.empty())
        return NameProblem{"NETWORK_HOST_UNRESOLVED",
                           rule.host + " does not resolve to an IPv4 address" +
                               (ec ? ": " + ec.message() : std::string())};
    return std::nullopt;
}

}  // namespace

awaitable<std::optional<NameProblem>> resolveNames(NetworkPolicy& policy) {
    auto ex = co_await net::this_coro::executor;
    NetworkPolicy resolved = policy;
    for (auto& rule : resolved.allow) {
        if (rule.kind != NetworkRule::Kind::Host) continue;
        // getaddrinfo on asio's resolver thread: a slow resolver holds up this request only.
        net::ip::tcp::resolver resolver(ex);
        boost::system::error_code ec;
        // (No temporaries in the co_await expression: GCC 12 miscompiles them.)
        const std::string host = rule.host;
        const std::string service;
        const auto v4 = net::ip::tcp::v4();
        auto token = net::redirect_error(use_awaitable, ec);
        auto results = co_await resolver.async_resolve(v4, host, service, token);
        std::optional<NameProblem> problem = checkResolved(rule, results, ec);
        if (problem) co_return problem;
    }
    policy = std::move(resolved);
    co_return std::nullopt;
}

std::string outboundUnavailable(bool privileged, bool bwrapIsolation) {
    if (!bwrapIsolation) return "outbound networking needs --isolation bwrap";
    if (!privileged) return "outbound networking needs sandboxd running as root";
    for (const char* tool : {"slirp4netns", "nft", "nsenter"})
        if (findProgram(tool).empty())
            return std::string("outbound networking needs ") + tool +
                   " (Debian: slirp4netns, nftables, util-linux)";
    if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "outbound networking needs /dev/net/tun";
    return "";
}

awaitable<Outbound> startOutbound(pid_t nsPid, const NetworkPolicy& policy) {
    auto ex = co_await net::this_coro::executor;
    os::Fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
    // 1. The rules, inside the sandbox's network namespace, before there is an interface.
    {
        os::Pipe in = os::Pipe::make(false);
        os::Pipe err = os::Pipe::make(true);
        os::SpawnOptions o;
        o.argv = {findProgram("nsenter"),
                  "--target",
                  std::to_string(nsPid),
                  "--net",
                  findProgram("nft"),
                  "-f",
                  "-"};
        o.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
        o.fds = {{0, in.read.get()}, {1, devnull.get()}, {2, err.write.get()}};
        pid_t pid = os::spawnProcess(o);
        in.read.reset();
        err.write.reset();
        const std::string rules = nftRuleset(policy);
        bool written = ::write(in.write.get(), rules.data(), rules.size()) ==
                       static_cast<ssize_t>(rules.size());
        in.write.reset();
        int code = co_await waitExit(pid, std::chrono::seconds(10));
        if (!written || code != 0)
            throw std::runtime_error("cannot load the sandbox's network rules (nft exit " +
                                     std::to_string(code) + "): " + drain(err.read.get()));
    }
    // 2. The user-mode network stack; its interface comes up once the rules hold.
    os::Pipe ready = os::Pipe::make(true);
    os::Pipe exitPipe = os::Pipe::make(false);  // sandboxd keeps the write end: slirp exits with it
    os::Pipe err = os::Pipe::make(true);
    os::SpawnOptions o;
    o.argv = {findProgram("slirp4netns"), "--configure",  "--mtu=65520", "--enable-sandbox",
              "--enable-seccomp",         "--ready-fd=3", "--exit-fd=4"};
    if (!policy.has(NetworkRule::Kind::HostLoopback)) o.argv.push_back("--disable-host-loopback");
    o.argv.insert(o.argv.end(), {std::to_string(nsPid), "tap0"});
    o.env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    o.fds = {{0, devnull.get()},
             {1, devnull.get()},
             {2, err.write.get()},
             {3, ready.write.get()},
             {4, exitPipe.read.get()}};
    pid_t pid = os::spawnProcess(o);
    ready.write.reset();
    exitPipe.read.reset();
    err.write.reset();
    net::posix::stream_descriptor readyIn(ex, ready.read.release());
    net::steady_timer timer(ex);
    timer.expires_after(std::chrono::seconds(10));
    timer.async_wait([&](const boost::system::error_code& e) {
        if (!e) readyIn.cancel();
    });
    char byte = 0;
    boost::system::error_code ec;
    std::size_t n = co_await readyIn.async_read_some(net::buffer(&byte, 1),
                                                     net::redirect_error(use_awaitable, ec));
    timer.cancel();
    Outbound out;
    out.pid = pid;
    out.keepAlive = std::move(exitPipe.write);
    if (n != 1) {
        std::string why = drain(err.read.get());
        stopOutbound(out);
        throw std::runtime_error("slirp4netns did not bring the sandbox's network up" +
                                 (why.empty() ? std::string() : ": " + why));
    }
    co_return out;
}

void stopOutbound(Outbound& o) {
    o.keepAlive.reset();
    if (o.pid <= 0) return;
    ::kill(-o.pid, SIGKILL);
    ::kill(o.pid, SIGKILL);
    int status = 0;
    ::waitpid(o.pid, &status, 0);
    os::forgetChild(o.pid);
    o.pid = -1;
}

}  // namespace sandbox::daemon
