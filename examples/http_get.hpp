// A minimal blocking HTTP/1.1 GET for the examples (the SDK has no public HTTP client): plain
// http only, the host's own name in the Host header, and, as browsers and curl do, any
// *.localhost name resolved to this machine's loopback.
#pragma once
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>

namespace example {

struct HttpAnswer {
    int status = 0;
    std::string body;
};

inline HttpAnswer httpGet(const std::string& url) {
    const std::string scheme = "http://";
    if (url.rfind(scheme, 0) != 0) throw std::runtime_error("only http:// URLs: " + url);
    std::string rest = url.substr(scheme.size());
    auto slash = rest.find('/');
    std::string hostPort = rest.substr(0, slash);
    std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
    auto colon = hostPort.rfind(':');
    std::string host = hostPort.substr(0, colon);
    std::string port = colon == std::string::npos ? "80" : hostPort.substr(colon + 1);
    std::string resolve = host;
    if (host.size() > 10 && host.compare(host.size() - 10, 10, ".localhost") == 0)
        resolve = "localhost";
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(resolve.c_str(), port.c_str(), &hints, &res) != 0 || !res)
        throw std::runtime_error("cannot resolve " + resolve);
    int fd = -1;
    for (addrinfo* a = res; a; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    ::freeaddrinfo(res);
    if (fd < 0) throw std::runtime_error("cannot connect to " + hostPort);
    std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + hostPort +
                          "\r\nConnection: close\r\nUser-Agent: sandbox-example\r\n\r\n";
    for (std::size_t sent = 0; sent < request.size();) {
        ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<std::size_t>(n);
    }
    std::string raw;
    char buf[16384];
    for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;)
        raw.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    HttpAnswer out;
    auto sp = raw.find(' ');
    if (sp != std::string::npos) out.status = std::atoi(raw.c_str() + sp + 1);
    auto end = raw.find("\r\n\r\n");
    if (end != std::string::npos) out.body = raw.substr(end + 4);  // Connection: close
    return out;
}

}  // namespace example
