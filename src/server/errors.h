// API errors: the Status → HTTP mapping and the two error body shapes (OpenAI's and TEI's).
#pragma once

#include <string>

#include "core/status.h"
#include "server/http_types.h"

namespace embedserve {

// How TEI's /embed classifies an error where its status differs from OpenAI's 400 (TEI router/src/http/server.rs
// maps ErrorType to statuses: Validation 413, Tokenizer 422, Empty 400; axum answers a body that does not fit
// the request type 422). kFromCode derives it from `code`: invalid_type and missing_field are schema errors,
// too_many_inputs and context_length_exceeded limits.
enum class TeiKind { kFromCode, kSchema, kEmpty, kTokenizer };

struct ApiError {
  int status = 400;
  std::string type;     // OpenAI's error.type: "invalid_request_error", "server_error", ...
  std::string code;     // OpenAI's error.code: "model_not_found", "queue_full", ... (empty → null)
  std::string message;
  std::string param;    // the request field at fault (empty → null)
  int retry_after_s = 0;  // > 0 adds a Retry-After header
  TeiKind tei = TeiKind::kFromCode;
};

ApiError bad_request(std::string message, std::string param = "", std::string code = "invalid_value");
// Maps an ErrorCode to its HTTP status: invalid_argument/out_of_range 400, not_found 404,
// permission_denied 401, resource_exhausted 429 (Retry-After), unavailable 503 (Retry-After),
// deadline_exceeded 504, cancelled 499 (never written: the client is gone), anything else 500.
ApiError api_error_from_status(const Status& status, std::string param = "");

enum class ErrorShape {
  kOpenAi,  // {"error": {"message", "type", "param", "code"}}
  kTei,     // {"error": "...", "error_type": "Validation" | "Overloaded" | "Unhealthy" | "Backend" | ...}
};

ServerResponse error_response(const ApiError& error, ErrorShape shape);

}  // namespace embedserve
