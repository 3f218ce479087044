#pragma once
// The request side of the HTTP server without a socket: how the parser is configured and how a
// parsed message becomes a Request (http_request.cpp also defines Request's readers and
// percentDecode, declared in http_server.hpp). Shared by the server's connection loop and the
// fuzz targets (tests/fuzz), so both run exactly the same code. Includes Beast: not for public
// headers.
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>

#include "server/http_server.hpp"

namespace sandbox::server {

/// The largest request head (request line and headers) the server reads.
inline constexpr std::size_t kMaxRequestHeaderBytes = 64 * 1024;

/// Sets the parser's limits as the server does: `maxBodyBytes` of body, kMaxRequestHeaderBytes
/// of head.
void configureRequestParser(boost::beast::http::request_parser<boost::beast::http::string_body>& p,
                            std::size_t maxBodyBytes);

/// The Request for a parsed message: method, target split at the first '?' into path and query,
/// header names lower-cased (values and order kept). The body is moved out of `msg`.
Request toRequest(boost::beast::http::request<boost::beast::http::string_body>& msg);

}  // namespace sandbox::server
