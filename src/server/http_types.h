// The request and response the handlers see: plain data, independent of the HTTP library.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace embedserve {

struct ServerRequest {
  std::string method;         // "GET", "POST", ...
  std::string path;           // the target without its query string
  std::string body;
  std::string authorization;  // the Authorization header, empty when absent
  // CORS (server/cors.h): the Origin header, and a preflight's Access-Control-Request-Method/-Headers.
  std::string origin;
  std::string access_control_request_method;
  std::string access_control_request_headers;
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "application/json";  // empty: no body, no Content-Type (204)
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers: Allow, Retry-After
  // For the access log and metrics.
  std::string route = "other";  // the matched route, a bounded set of labels
  size_t inputs = 0;
  size_t tokens = 0;
};

// Every request is answered exactly once through its Respond, from any thread.
using Respond = std::function<void(ServerResponse)>;

}  // namespace embedserve
