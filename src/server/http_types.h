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
  std::string query;          // the target after '?', empty when none
  std::string body;
  // A body the HTTP layer streamed to this file instead of `body` (POST /v1/files); the handler owns and
  // removes it.
  std::string body_file;
  std::string content_type;   // the Content-Type header
  std::string authorization;  // the Authorization header, empty when absent
  // Set by the router: the fingerprint of the API key the request carried ("" without keys), which owns the
  // files and batches it creates, and the `{id}` segment of a route such as /v1/files/{id}.
  std::string owner;
  std::string path_id;
  // CORS (server/cors.h): the Origin header, and a preflight's Access-Control-Request-Method/-Headers.
  std::string origin;
  std::string access_control_request_method;
  std::string access_control_request_headers;
};

struct ServerResponse {
  int status = 200;
  std::string content_type = "application/json";  // empty: no body, no Content-Type (204)
  std::string body;
  std::string body_file;  // when set, the body is this file's content, streamed from disk (GET .../content)
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers: Allow, Retry-After
  // For the access log and metrics.
  std::string route = "other";  // the matched route, a bounded set of labels
  size_t inputs = 0;
  size_t tokens = 0;
};

// Every request is answered exactly once through its Respond, from any thread.
using Respond = std::function<void(ServerResponse)>;

}  // namespace embedserve
