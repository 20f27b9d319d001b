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

// TEI's answer to an error: its status and ErrorType name (text-embeddings-inference router/src/lib.rs ErrorType,
// router/src/http/server.rs `From<&ErrorType> for StatusCode`). A request that is valid JSON but does not fit the
// schema (a wrong type, a missing field, an unknown enum value) is rejected by axum's Json extractor with 422;
// an input too long or too many inputs is ErrorType::Validation, 413; an empty input ErrorType::Empty, 400; a
// token id the tokenizer cannot map ErrorType::Tokenizer, 422. Everything else keeps the OpenAI route's status.
struct TeiError {
  int status;
  const char* type;
};

TeiError tei_error(const ApiError& e) {
  if (e.status == 400) {
    switch (e.tei) {
      case TeiKind::kSchema: return {422, "Validation"};
      case TeiKind::kEmpty: return {400, "Empty"};
      case TeiKind::kTokenizer: return {422, "Tokenizer"};
      case TeiKind::kFromCode:
        if (e.code == "invalid_type" || e.code == "missing_field") return {422, "Validation"};
        if (e.code == "too_many_inputs" || e.code == "context_length_exceeded") return {413, "Validation"};
        return {400, "Validation"};
    }
  }
  switch (e.status) {
    case 401: return {401, "Unauthorized"};
    case 429: return {429, "Overloaded"};
    case 503: return {503, "Unhealthy"};
    default: return {e.status, e.status >= 500 ? "Backend" : "Validation"};
  }
}

}  // namespace

ServerResponse error_response(const ApiError& error, ErrorShape shape) {
  ServerResponse r;
  r.status = error.status;
  JsonWriter w(r.body);
  w.begin_object();
  if (shape == ErrorShape::kTei) {
    const TeiError tei = tei_error(error);
    r.status = tei.status;
    w.key("error");
    w.string(error.message);
    w.key("error_type");
    w.string(tei.type);
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
