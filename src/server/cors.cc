// CORS: origin matching, the headers on every answer, and preflight answers.
#include "server/cors.h"

#include <algorithm>

#include "server/errors.h"

namespace embedserve {
namespace {

// How long a browser may cache a preflight; browsers cap it themselves (Chrome at 2 hours).
constexpr const char* kMaxAgeSeconds = "3600";

bool any_origin(const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), "*") != allowed.end();
}

bool origin_allowed(const std::vector<std::string>& allowed, std::string_view origin) {
  if (origin.empty()) return false;
  return any_origin(allowed) || std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

}  // namespace

bool is_cors_preflight(const ServerRequest& req) {
  return req.method == "OPTIONS" && !req.origin.empty() && !req.access_control_request_method.empty();
}

void add_cors_headers(const std::vector<std::string>& allowed, std::string_view origin, ServerResponse& response) {
  if (!origin_allowed(allowed, origin)) return;
  if (any_origin(allowed)) {
    response.headers.emplace_back("Access-Control-Allow-Origin", "*");
    return;
  }
  // The answer names one origin, so a cache must keep one copy per Origin.
  response.headers.emplace_back("Access-Control-Allow-Origin", std::string(origin));
  response.headers.emplace_back("Vary", "Origin");
}

ServerResponse cors_preflight_response(const std::vector<std::string>& allowed, const ServerRequest& req,
                                       const std::string& methods) {
  if (!origin_allowed(allowed, req.origin)) {
    ApiError e = bad_request("origin '" + req.origin + "' is not allowed; start the server with it in "
                             "--cors-allow-origins", "", "cors_origin_not_allowed");
    e.status = 403;
    return error_response(e, ErrorShape::kOpenAi);
  }
  ServerResponse r;
  r.status = 204;
  r.content_type.clear();
  add_cors_headers(allowed, req.origin, r);
  r.headers.emplace_back("Access-Control-Allow-Methods", methods + ", OPTIONS");
  r.headers.emplace_back("Access-Control-Allow-Headers", req.access_control_request_headers.empty()
                                                             ? std::string("Authorization, Content-Type")
                                                             : req.access_control_request_headers);
  r.headers.emplace_back("Access-Control-Max-Age", kMaxAgeSeconds);
  return r;
}

}  // namespace embedserve
