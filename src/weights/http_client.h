// A minimal HTTP client interface for hub downloads, so the download logic never touches libcurl directly
// (and tests could substitute a fake).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace embedserve {

struct HttpRequest {
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  bool head = false;                 // HEAD instead of GET
  uint64_t range_start = 0;          // > 0: "Range: bytes=<range_start>-" (resuming a partial download)
  bool follow_redirects = true;
};

using HttpHeaders = std::map<std::string, std::string>;  // names lower-cased

struct HttpResponse {
  long status = 0;               // of the final response, after redirects
  HttpHeaders first_headers;     // of the first response (the hub's own, e.g. X-Repo-Commit on a 302)
  HttpHeaders headers;           // of the final response
  std::string error_body;        // the first few KB of a non-2xx body, for error messages
};

// Receives the body of a 2xx response in chunks, with that response's status (200, or 206 when a range
// request was honoured); a non-OK Status aborts the transfer and is returned.
using HttpBodySink = std::function<Status(long status, std::string_view chunk)>;

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Performs the request (following redirects unless told not to). Any HTTP status is a response; a transport failure
  // (DNS, refused connection, a transfer cut short) is an unavailable Status naming the URL.
  virtual StatusOr<HttpResponse> fetch(const HttpRequest& request, const HttpBodySink& sink) = 0;
};

// libcurl, loaded with dlopen on first use so the binary has no link-time dependency on it: a machine
// without libcurl runs everything but downloads. `why` goes into the error when it is missing, e.g.
// "downloading Qwen/Qwen3-Embedding-0.6B".
StatusOr<std::unique_ptr<HttpClient>> make_curl_http_client(const std::string& why, const std::string& libcurl = "");

}  // namespace embedserve
