// What the two list routes (GET /v1/files, GET /v1/batches) share: the `limit` query parameter and OpenAI's page.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/errors.h"
#include "server/http_types.h"

namespace embedserve {

// `limit` from the request's query: `fallback` when absent; an error naming the range when it is not a whole
// number from 1 to `max`.
struct ListLimit {
  size_t value = 0;
  std::optional<ApiError> error;
};
ListLimit list_limit(const ServerRequest& req, size_t fallback, size_t max);

// OpenAI's list object over `records`, which the store was asked for with `limit + 1` rows so that one more row
// than the page says there is a next page.
template <typename Record, typename ToObject>
nlohmann::json list_page(std::vector<Record> records, size_t limit, ToObject to_object) {
  using nlohmann::json;
  const bool more = records.size() > limit;
  if (more) records.resize(limit);
  json data = json::array();
  for (const Record& r : records) data.push_back(to_object(r));
  return {{"object", "list"},
          {"data", data},
          {"first_id", records.empty() ? json(nullptr) : json(records.front().id)},
          {"last_id", records.empty() ? json(nullptr) : json(records.back().id)},
          {"has_more", more}};
}

}  // namespace embedserve
