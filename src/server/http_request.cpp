#include "server/http_request.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "core/text.hpp"

namespace sandbox::server {
namespace http = boost::beast::http;

std::optional<std::string_view> Request::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (k == name) return std::string_view(v);
    return std::nullopt;
}

std::optional<std::string> percentDecode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out.push_back(s[i]);
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        constexpr auto hex = core::hexDigitValue;
        int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

std::optional<std::string> Request::queryParam(std::string_view name) const {
    std::string_view q = query;
    while (!q.empty()) {
        auto amp = q.find('&');
        std::string_view kv = q.substr(0, amp);
        auto eq = kv.find('=');
        std::string_view k = kv.substr(0, eq);
        if (k == name) {
            std::string_view v =
                eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
            std::string plus(v);
            for (auto& c : plus)
                if (c == '+') c = ' ';
            return percentDecode(plus);
        }
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return std::nullopt;
}

void configureRequestParser(http::request_parser<http::string_body>& p, std::size_t maxBodyBytes,
                            std::size_t maxHeaderBytes) {
    p.body_limit(maxBodyBytes);
    p.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(maxHeaderBytes, UINT32_MAX)));
}

Request requestHead(const http::request<http::string_body>& head) {
    Request req;
    req.method = std::string(head.method_string());
    req.target = std::string(head.target());
    auto qpos = req.target.find('?');
    req.path = req.target.substr(0, qpos);
    if (qpos != std::string::npos) req.query = req.target.substr(qpos + 1);
    for (const auto& f : head) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        req.headers.emplace_back(std::move(name), std::string(f.value()));
    }
    return req;
}

Request toRequest(http::request<http::string_body>& msg) {
    Request req = requestHead(msg);
    req.body = std::move(msg.body());
    return req;
}

std::string refusedPath(std::string_view path) {
    for (std::size_t i = 0; i + 2 < path.size(); ++i)
        if (path[i] == '%' && path[i + 1] == '0' && path[i + 2] == '0')
            return "Invalid path: it contains a NUL byte (%00)";
    return {};
}

}  // namespace sandbox::server
