// OpenAI's batch line formats: reading an input line ({"custom_id", "method", "url", "body"}) and writing
// output and error lines ({"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace embedserve::jobs {

struct BatchRequestLine {
  std::string custom_id;
  std::string body;  // the request body, serialised again as JSON
};

// A line that cannot be run: it goes to the error file with this code and message.
struct LineError {
  std::string custom_id;  // "" when the line has none (written as null)
  std::string code;       // "invalid_json", "missing_custom_id", "invalid_method", "invalid_url", "missing_body"
  std::string message;
};

struct ParsedLine {
  std::optional<BatchRequestLine> request;
  LineError error;  // when !request
};

// Checks the envelope: a JSON object with a string custom_id, method "POST", url equal to `endpoint` and an
// object body. The body itself is the endpoint's to judge.
ParsedLine parse_batch_line(std::string_view text, std::string_view endpoint);

// Whether a file's first non-blank line looks like batch JSONL at all (a JSON object): validation refuses a
// file that is not, instead of failing every line of it.
bool is_json_object(std::string_view text);

// One output or error line, '\n'-terminated. `request_id` names the request within its job.
std::string render_response_line(const std::string& request_id, const std::string& custom_id, int status_code,
                                 std::string_view body);
std::string render_error_line(const std::string& request_id, const LineError& error);

}  // namespace embedserve::jobs
