// Reading the request file and writing each request's bytes once, before the run.
#include "request_set.h"

#include <charconv>
#include <fstream>

namespace embedserve::load {

StatusOr<Target> parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) {
    return invalid_argument("--url '" + std::string(url) + "' must start with http:// (the load tool speaks plain "
                            "HTTP/1.1, e.g. http://127.0.0.1:30000)");
  }
  url.remove_prefix(kScheme.size());
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view prefix = slash == std::string_view::npos ? std::string_view() : url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  Target t;
  t.host_header = std::string(authority);
  t.path_prefix = std::string(prefix);
  std::string_view host = authority, port;
  if (!authority.empty() && authority.front() == '[') {  // [::1]:30000
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return invalid_argument("--url: an IPv6 address lacks its ']'");
    host = authority.substr(1, close - 1);
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return invalid_argument("--url: expected ':PORT' after ']'");
      port = rest.substr(1);
    }
  } else if (size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return invalid_argument("--url '" + std::string(kScheme) + std::string(url) + "' names no host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || p != port.data() + port.size() || value == 0 || value > 65535)
      return invalid_argument("--url: the port '" + std::string(port) + "' is not a number from 1 to 65535");
  }
  t.host = std::string(host);
  t.port = port.empty() ? "80" : std::string(port);
  return t;
}

PreparedRequest prepare_request(std::string_view method, std::string_view path, std::string_view body,
                                uint32_t expected_vectors, const Target& target, const std::string& api_key) {
  PreparedRequest r;
  r.expected_vectors = expected_vectors;
  std::string& s = r.bytes;
  s.reserve(200 + path.size() + body.size() + api_key.size());
  s.append(method).append(" ").append(target.path_prefix).append(path).append(" HTTP/1.1\r\nHost: ");
  s.append(target.host_header).append("\r\n");
  if (!api_key.empty()) s.append("Authorization: Bearer ").append(api_key).append("\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    s.append("Content-Type: application/json\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  s.append("\r\n").append(body);
  return r;
}

StatusOr<std::vector<PreparedRequest>> load_request_file(const std::string& path, const Target& target,
                                                         const std::string& api_key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return not_found("cannot open the request file '" + path + "' (write one with python3 bench/server/http_load.py "
                     "... --write-bodies FILE)");
  }
  std::vector<PreparedRequest> requests;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto where = [&] { return path + ":" + std::to_string(line_no) + ": "; };
    std::string_view rest(line);
    auto field = [&rest]() {
      size_t space = rest.find(' ');
      std::string_view f = rest.substr(0, space);
      rest = space == std::string_view::npos ? std::string_view() : rest.substr(space + 1);
      return f;
    };
    std::string_view method = field(), route = field(), inputs = field();
    if (method.empty() || route.empty() || inputs.empty())
      return invalid_argument(where() + "expected 'METHOD PATH INPUTS BODY', got '" + line.substr(0, 80) + "'");
    if (route.front() != '/')
      return invalid_argument(where() + "the path '" + std::string(route) + "' must start with /");
    uint32_t expected = 0;
    auto [p, ec] = std::from_chars(inputs.data(), inputs.data() + inputs.size(), expected);
    if (ec != std::errc() || p != inputs.data() + inputs.size())
      return invalid_argument(where() + "INPUTS '" + std::string(inputs) + "' is not a whole number");
    requests.push_back(prepare_request(method, route, rest, expected, target, api_key));
  }
  if (in.bad()) return io_error("reading the request file '" + path + "' failed");
  if (requests.empty()) return invalid_argument("the request file '" + path + "' holds no request");
  return requests;
}

}  // namespace embedserve::load
