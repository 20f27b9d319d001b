// Reading one HTTP request: Beast's parser as the server configures it, and the framing and header rules
// of RFC 9112 that Beast leaves to the application. One place, so the server and the fuzzer run the same code.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "server/http_types.h"

namespace embedserve {

using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;
using RequestHeader = boost::beast::http::request_header<>;

struct HttpLimits {
  size_t max_body_bytes = 64u << 20;    // larger bodies get 413 before they are read
  size_t max_header_bytes = 16u << 10;  // larger header blocks get 431
};

// An answer the HTTP layer gives before routing; the connection is closed after it.
struct HttpRejection {
  int status = 400;
  std::string message;
};

// Sets the limits on a freshly constructed parser (one per request).
void configure_request_parser(RequestParser& parser, const HttpLimits& limits);

// Checks a header Beast accepted, before any body byte is read. Beast takes any Transfer-Encoding whose last
// coding is not `chunked` as "no body", so the body would be parsed as the next request (smuggling); RFC 9112
// §6.1/§6.3 make every transfer coding other than one final `chunked` (and any coding next to Content-Length,
// or in HTTP/1.0) a 400 that closes the connection. Also 400: an HTTP/1.1 request without exactly one Host
// (§3.2), and more than one Authorization (which key would count is ambiguous).
std::optional<HttpRejection> check_request_header(const RequestHeader& header);

// The answer to a parse error: 413 over the body limit, 431 over the header limit, else 400.
HttpRejection rejection_for_parse_error(const boost::system::error_code& ec, const HttpLimits& limits);

// The request as the router sees it without its body (method, path, query, headers).
ServerRequest to_server_request_head(const RequestHeader& header);
// The request as the router sees it; moves the body out of `message`.
ServerRequest to_server_request(boost::beast::http::request<boost::beast::http::string_body>& message);

// Parses `wire` as pipelined requests the way a session reads a connection (same parser, limits and checks),
// stopping after the first rejection, a request that does not keep the connection alive, or incomplete bytes.
// For the fuzzer and tests: the session itself reads asynchronously through the functions above.
struct ParsedRequest {
  std::optional<HttpRejection> rejection;  // set: the connection is answered with it and closed
  ServerRequest request;                   // when not rejected
  bool keep_alive = false;
};
std::vector<ParsedRequest> parse_pipelined_requests(std::string_view wire, const HttpLimits& limits);

}  // namespace embedserve
