// CORS (--cors-allow-origins, TEI's flag): which web origins a browser may call the API from. Off by default:
// with no origins configured no CORS header is ever sent and OPTIONS is a 405 like any unknown method.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/http_types.h"

namespace embedserve {

// A browser's preflight: OPTIONS with Origin and Access-Control-Request-Method.
bool is_cors_preflight(const ServerRequest& req);

// Adds Access-Control-Allow-Origin (and Vary: Origin unless any origin is allowed) to the answer to a
// request from `origin` when `allowed` (exact origins, or "*") admits it; otherwise leaves it untouched.
void add_cors_headers(const std::vector<std::string>& allowed, std::string_view origin, ServerResponse& response);

// The answer to a preflight for a route that accepts `methods` ("GET, POST"): 204 with the allowed origin,
// methods, the headers the browser asked for (the API ignores unknown headers; the openai JS client sends
// its own X-Stainless-*) and Max-Age; 403 naming the flag when the origin is not allowed.
ServerResponse cors_preflight_response(const std::vector<std::string>& allowed, const ServerRequest& req,
                                       const std::string& methods);

}  // namespace embedserve
