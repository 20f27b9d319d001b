// Reading one HTTP request: parser limits, the RFC 9112 framing checks Beast leaves to us, error answers.
#include "server/http_request.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>

namespace embedserve {

namespace beast = boost::beast;
namespace http = beast::http;

void configure_request_parser(RequestParser& parser, const HttpLimits& limits) {
  parser.body_limit(limits.max_body_bytes);
  parser.header_limit(static_cast<uint32_t>(limits.max_header_bytes));
}

namespace {

// The elements of a comma-separated field value (RFC 9110 §5.6.1), optional whitespace trimmed, empty
// elements skipped as the list syntax allows.
void split_list(std::string_view value, std::vector<std::string_view>& out) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

// Boost 1.74's Beast speaks boost::string_view.
std::string_view view(beast::string_view s) { return {s.data(), s.size()}; }

HttpRejection bad_request_header(std::string message) { return {400, std::move(message)}; }

}  // namespace

std::optional<HttpRejection> check_request_header(const RequestHeader& header) {
  std::vector<std::string_view> codings;
  bool has_transfer_encoding = false, has_content_length = false;
  size_t hosts = 0, authorizations = 0;
  for (const auto& f : header) {
    switch (f.name()) {
      case http::field::transfer_encoding:
        has_transfer_encoding = true;
        split_list(view(f.value()), codings);
        break;
      case http::field::content_length: has_content_length = true; break;
      case http::field::host: ++hosts; break;
      case http::field::authorization: ++authorizations; break;
      default: break;
    }
  }
  if (has_transfer_encoding) {
    if (header.version() < 11)
      return bad_request_header("Transfer-Encoding is not allowed in an HTTP/1.0 request (RFC 9112 §6.1); "
                                "send the body with Content-Length");
    if (has_content_length)
      return bad_request_header("a request must not carry both Transfer-Encoding and Content-Length "
                                "(RFC 9112 §6.3); send one of them");
    if (codings.size() != 1 || !beast::iequals(beast::string_view(codings[0].data(), codings[0].size()), "chunked")) {
      std::string given;
      for (auto c : codings) given += (given.empty() ? "" : ", ") + std::string(c);
      return bad_request_header("Transfer-Encoding '" + given + "' is not supported: send the body with "
                                "Content-Length or with 'Transfer-Encoding: chunked' alone (RFC 9112 §6.3)");
    }
  }
  if (hosts > 1 || (hosts == 0 && header.version() >= 11))
    return bad_request_header("an HTTP/1.1 request needs exactly one Host header, got " + std::to_string(hosts) +
                              " (RFC 9112 §3.2)");
  if (authorizations > 1)
    return bad_request_header("send one Authorization header, not " + std::to_string(authorizations));
  return std::nullopt;
}

HttpRejection rejection_for_parse_error(const boost::system::error_code& ec, const HttpLimits& limits) {
  if (ec == http::error::body_limit)
    return {413, "the request body is larger than the limit of " + std::to_string(limits.max_body_bytes) +
                     " bytes (--max-body-bytes)"};
  if (ec == http::error::header_limit)
    return {431, "the request headers are larger than the limit of " + std::to_string(limits.max_header_bytes) +
                     " bytes"};
  return {400, "malformed HTTP request: " + ec.message()};
}

ServerRequest to_server_request_head(const RequestHeader& message) {
  ServerRequest r;
  r.method = std::string(message.method_string());
  const std::string_view target = view(message.target());
  const size_t question = target.find('?');
  r.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) r.query = std::string(target.substr(question + 1));
  r.content_type = std::string(message[http::field::content_type]);
  r.authorization = std::string(message[http::field::authorization]);
  r.origin = std::string(message[http::field::origin]);
  r.access_control_request_method = std::string(message[http::field::access_control_request_method]);
  r.access_control_request_headers = std::string(message[http::field::access_control_request_headers]);
  return r;
}

ServerRequest to_server_request(http::request<http::string_body>& message) {
  ServerRequest r = to_server_request_head(message);
  r.body = std::move(message.body());
  return r;
}

std::vector<ParsedRequest> parse_pipelined_requests(std::string_view wire, const HttpLimits& limits) {
  std::vector<ParsedRequest> out;
  while (!wire.empty()) {
    RequestParser parser;
    configure_request_parser(parser, limits);
    boost::system::error_code ec;
    // Feeds bytes until `done`; false when the bytes ran out first (the session would wait for more).
    auto feed = [&](auto done) {
      while (!done()) {
        const size_t n = parser.put(boost::asio::buffer(wire.data(), wire.size()), ec);
        wire.remove_prefix(n);
        if (ec == http::error::need_more || (!ec && n == 0)) return false;
        if (ec) return true;
      }
      return true;
    };
    ParsedRequest parsed;
    // The header first, checked before any body byte is consumed, as the session does.
    if (!feed([&] { return parser.is_header_done(); })) return out;
    if (!ec) parsed.rejection = check_request_header(parser.get());
    if (!ec && !parsed.rejection && !feed([&] { return parser.is_done(); })) return out;
    if (ec) parsed.rejection = rejection_for_parse_error(ec, limits);
    if (!parsed.rejection) {
      parsed.keep_alive = parser.get().keep_alive();
      parsed.request = to_server_request(parser.get());
    }
    const bool go_on = parsed.keep_alive;
    out.push_back(std::move(parsed));
    if (!go_on) break;
  }
  return out;
}

}  // namespace embedserve
