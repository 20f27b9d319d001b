// Batch input parsing and output/error line rendering, with nlohmann::json.
#include "jobs/batch_lines.h"

#include <nlohmann/json.hpp>

namespace embedserve::jobs {

using nlohmann::json;

ParsedLine parse_batch_line(std::string_view text, std::string_view endpoint) {
  ParsedLine out;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    out.error = {"", "invalid_json", "the line is not a JSON object; each line must be {\"custom_id\", \"method\", "
                                     "\"url\", \"body\"}"};
    return out;
  }
  auto id = j.find("custom_id");
  if (id == j.end() || !id->is_string() || id->get_ref<const std::string&>().empty()) {
    out.error = {"", "missing_custom_id", "the line needs a non-empty string \"custom_id\""};
    return out;
  }
  out.error.custom_id = id->get<std::string>();
  auto method = j.find("method");
  if (method == j.end() || !method->is_string() || method->get_ref<const std::string&>() != "POST") {
    out.error.code = "invalid_method";
    out.error.message = "\"method\" must be \"POST\"";
    return out;
  }
  auto url = j.find("url");
  if (url == j.end() || !url->is_string() || url->get_ref<const std::string&>() != endpoint) {
    out.error.code = "invalid_url";
    out.error.message = "\"url\" must be \"" + std::string(endpoint) + "\", the batch's endpoint";
    return out;
  }
  auto body = j.find("body");
  if (body == j.end() || !body->is_object()) {
    out.error.code = "missing_body";
    out.error.message = "the line needs an object \"body\": the request to " + std::string(endpoint);
    return out;
  }
  out.request = BatchRequestLine{out.error.custom_id, body->dump()};
  return out;
}

bool is_json_object(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  return !j.is_discarded() && j.is_object();
}

std::string render_response_line(const std::string& request_id, const std::string& custom_id, int status_code,
                                 std::string_view body) {
  // The body is already JSON: spliced in, not parsed and printed again (vectors are most of the bytes).
  std::string line = "{\"id\":" + json(request_id).dump() + ",\"custom_id\":" +
                     json(custom_id).dump(-1, ' ', false, json::error_handler_t::replace) +
                     ",\"response\":{\"status_code\":" + std::to_string(status_code) +
                     ",\"request_id\":" + json(request_id).dump() + ",\"body\":";
  line.append(body);
  line += "},\"error\":null}\n";
  return line;
}

std::string render_error_line(const std::string& request_id, const LineError& error) {
  json j = {{"id", request_id},
            {"custom_id", error.custom_id.empty() ? json(nullptr) : json(error.custom_id)},
            {"response", nullptr},
            {"error", {{"code", error.code}, {"message", error.message}}}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace embedserve::jobs
