// list_limit: the `limit` query parameter of the list routes, checked.
#include "server/jobs_list.h"

#include "server/jobs_handlers.h"

namespace embedserve {

ListLimit list_limit(const ServerRequest& req, size_t fallback, size_t max) {
  const std::string l = query_param(req.query, "limit");
  if (l.empty()) return {fallback, std::nullopt};
  size_t limit = 0;
  try {
    limit = std::stoul(l);
  } catch (...) {
    limit = 0;
  }
  if (limit < 1 || limit > max)
    return {0, bad_request("limit must be from 1 to " + std::to_string(max) + ", got '" + l + "'", "limit")};
  return {limit, std::nullopt};
}

}  // namespace embedserve
