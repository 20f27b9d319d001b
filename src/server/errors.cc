// API errors: status mapping and JSON bodies in OpenAI's and TEI's shapes.
#include "server/errors.h"

#include "server/json_writer.h"

namespace embedserve {

ApiError bad_request(std::string message, std::string param, std::string code) {
  return {400, "invalid_request_error", std::move(code), std::move(message), std::move(param), 0};
}

ApiError api_error_from_status(const Status& status, std::string param) {
  ApiError e;
  e.message = status.message();
  e.param = std::move(param);
  switch (status.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kOutOfRange:
      e.status = 400; e.type = "invalid_request_error"; e.code = "invalid_value"; break;
    case ErrorCode::kNotFound:
      e.status = 404; e.type = "invalid_request_error"; e.code = "not_found"; break;
    case ErrorCode::kPermissionDenied:
      e.status = 401; e.type = "invalid_request_error"; e.code = "invalid_api_key"; break;
    case ErrorCode::kResourceExhausted:
      e.status = 429; e.type = "rate_limit_error"; e.code = "queue_full"; e.retry_after_s = 1; break;
    case ErrorCode::kUnavailable:
      e.status = 503; e.type = "server_error"; e.code = "unavailable"; e.retry_after_s = 5; break;
    case ErrorCode::kDeadlineExceeded:
      e.status = 504; e.type = "server_error"; e.code = "timeout"; break;
    case ErrorCode::kCancelled:
      e.status = 499; e.type = "invalid_request_error"; e.code = "cancelled"; break;
    default:
      e.status = 500; e.type = "server_error"; e.code = "internal_error"; break;
  }
  return e;
}

namespace {

// TEI's ErrorType names (text-embeddings-inference router/src/http/types.rs).
const char* tei_error_type(int status) {
  switch (status) {
    case 401: return "Unauthorized";
    case 429: return "Overloaded";
    case 503: return "Unhealthy";
    default: return status >= 500 ? "Backend" : "Validation";
  }
}

}  // namespace

ServerResponse error_response(const ApiError& error, ErrorShape shape) {
  ServerResponse r;
  r.status = error.status;
  JsonWriter w(r.body);
  w.begin_object();
  if (shape == ErrorShape::kTei) {
    w.key("error");
    w.string(error.message);
    w.key("error_type");
    w.string(tei_error_type(error.status));
  } else {
    w.key("error");
    w.begin_object();
    w.key("message");
    w.string(error.message);
    w.key("type");
    w.string(error.type);
    w.key("param");
    if (error.param.empty()) w.null(); else w.string(error.param);
    w.key("code");
    if (error.code.empty()) w.null(); else w.string(error.code);
    w.end_object();
  }
  w.end_object();
  if (error.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(error.retry_after_s));
  return r;
}

}  // namespace embedserve
