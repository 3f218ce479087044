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

/// Sets the parser's limits as the server does: `maxBodyBytes` of body, `maxHeaderBytes` of head
/// (request line and headers; more is answered 431).
void configureRequestParser(boost::beast::http::request_parser<boost::beast::http::string_body>& p,
                            std::size_t maxBodyBytes,
                            std::size_t maxHeaderBytes = kMaxRequestHeaderBytes);

/// The Request for a parsed head: method, target split at the first '?' into path and query,
/// header names lower-cased (values and order kept). No body (the server reads it after the
/// head check).
Request requestHead(const boost::beast::http::request<boost::beast::http::string_body>& head);

/// requestHead() with the body moved out of `msg`.
Request toRequest(boost::beast::http::request<boost::beast::http::string_body>& msg);

}  // namespace sandbox::server
