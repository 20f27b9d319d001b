// The requests a load run replays, as the exact bytes to send: read from a request file (what
// bench/server/http_load.py --write-bodies writes, so both tools run one workload) or one GET route.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace embedserve::load {

// Where requests go: http://HOST[:PORT][/PREFIX] (no TLS: a load generator beside the server).
struct Target {
  std::string host;         // as written, brackets removed from an IPv6 literal
  std::string port;         // "80" when the URL names none
  std::string host_header;  // HOST[:PORT] as the URL wrote it
  std::string path_prefix;  // prepended to every request's path ("" or "/base", no trailing slash)
};

StatusOr<Target> parse_url(std::string_view url);

struct PreparedRequest {
  std::string bytes;          // request line, headers and body, ready for send()
  uint32_t expected_vectors;  // vectors a 200 answer must hold; 0: only the status is checked
};

// The request file: one request per line, `METHOD PATH INPUTS BODY`, where INPUTS is the number of vectors the
// answer must hold (0: check only the status) and BODY, the rest of the line, is sent as application/json (a
// line has no BODY for GET). Empty lines are skipped. Errors name the file and the line.
StatusOr<std::vector<PreparedRequest>> load_request_file(const std::string& path, const Target& target,
                                                         const std::string& api_key);

// One request: METHOD PATH with BODY (empty: no body and no Content-Type), headers for keep-alive and the key.
PreparedRequest prepare_request(std::string_view method, std::string_view path, std::string_view body,
                                uint32_t expected_vectors, const Target& target, const std::string& api_key);

}  // namespace embedserve::load
