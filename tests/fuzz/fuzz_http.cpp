// The HTTP request parser as the server runs it: Boost.Beast's request_parser<string_body> with
// the server's limits (server/http_request.hpp), fed the input in chunks through put() the way
// Beast's read loop does (head first, then the body eagerly, put_eof at the end), several
// pipelined requests on one buffer, then the server's own request building (toRequest) and its
// readers (header, queryParam, percentDecode). The same input is also parsed with a tiny body
// limit, to exercise the 413 path.
#include <boost/beast/core/error.hpp>
#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.hpp"
#include "server/http_request.hpp"
#include "server/http_server.hpp"

namespace http = boost::beast::http;
using sandbox::server::Request;

namespace {

// The bytes a connection receives, arriving chunk by chunk.
struct Connection {
    std::vector<std::string_view> chunks;
    std::size_t next = 0;
    std::string buffer;  // received, not yet parsed
    bool receive() {
        if (next == chunks.size()) return false;
        buffer.append(chunks[next++]);
        return true;
    }
};

// One request, as http::async_read_header + http::async_read do. False at the end of the
// stream or on an error (the server then closes the connection).
bool readRequest(Connection& c, std::size_t bodyLimit, http::request<http::string_body>& out) {
    http::request_parser<http::string_body> parser;
    sandbox::server::configureRequestParser(parser, bodyLimit);
    parser.eager(false);  // async_read_header stops after the head
    boost::beast::error_code ec;
    // The peer closed: a request in progress ends here (put_eof decides whether it is whole).
    auto endOfStream = [&] {
        if (!parser.got_some()) return false;
        parser.put_eof(ec);
        return !ec && parser.is_done();
    };
    int stalls = 0;
    while (!parser.is_done()) {
        if (parser.is_header_done()) parser.eager(true);  // async_read: the body
        if (c.buffer.empty()) {
            if (!c.receive()) {
                if (!endOfStream()) return false;
                break;
            }
            continue;
        }
        const std::size_t n = parser.put(boost::asio::buffer(c.buffer), ec);
        FUZZ_CHECK(n <= c.buffer.size(), c.buffer);
        c.buffer.erase(0, n);
        if (ec == http::error::need_more) {
            ec = {};
            if (!c.receive()) {
                if (!endOfStream()) return false;
                break;
            }
            continue;
        }
        if (ec) return false;  // malformed, or beyond a limit (body_limit: the server's 413)
        if (n == 0 && ++stalls > 2) {
            if (!c.receive()) {
                if (!endOfStream()) return false;
                break;
            }
            stalls = 0;
        }
    }
    out = parser.release();
    return true;
}

void checkRequest(http::request<http::string_body>& msg, std::size_t bodyLimit) {
    const std::string target(msg.target());
    const std::string method(msg.method_string());
    Request req = sandbox::server::toRequest(msg);
    FUZZ_CHECK(req.method == method, req.method);
    FUZZ_CHECK(req.target == target, req.target);
    FUZZ_CHECK(req.path.find('?') == std::string::npos, req.path);
    const bool hasQuery = target.find('?') != std::string::npos;
    FUZZ_CHECK(req.path + (hasQuery ? "?" + req.query : "") == target, target);
    FUZZ_CHECK(req.body.size() <= bodyLimit, req.body);
    for (const auto& [name, value] : req.headers) {
        for (char ch : name) FUZZ_CHECK(!(ch >= 'A' && ch <= 'Z'), name);
        auto first = req.header(name);
        FUZZ_CHECK(first.has_value(), name);
    }
    (void)sandbox::server::percentDecode(req.path);
    // Every parameter name in the query, and one that is not there.
    std::string_view q = req.query;
    for (;;) {
        auto amp = q.find('&');
        std::string_view kv = q.substr(0, amp);
        std::string_view key = kv.substr(0, kv.find('='));
        (void)req.queryParam(key);  // nullopt for a bad escape
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    (void)req.queryParam("sessionId");
}

void serve(std::string_view input, std::uint8_t seed, std::size_t bodyLimit) {
    Connection c;
    c.chunks = sandbox::fuzz::chunksOf(input, seed);
    for (int i = 0; i < 16; ++i) {  // keep-alive: requests one after another on the connection
        http::request<http::string_body> msg;
        if (!readRequest(c, bodyLimit, msg)) break;
        const bool keepAlive = msg.keep_alive();
        checkRequest(msg, bodyLimit);
        if (!keepAlive) break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    std::string_view input(reinterpret_cast<const char*>(bytes) + 1, size - 1);
    serve(input, bytes[0], sandbox::server::ServerOptions{}.maxBodyBytes);
    serve(input, bytes[0], 16);
    return 0;
}
