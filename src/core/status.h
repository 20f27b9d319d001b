// Errors as values: Status and StatusOr<T>, with messages a user can act on.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace embedserve {

// The kinds of failure callers branch on. The server maps them to HTTP statuses
// (src/server/errors.cc); the CLI prints the message and exits non-zero.
enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong (HTTP 400)
  kOutOfRange,         // an input exceeds a limit: too long, too many (HTTP 400 / 413)
  kNotFound,           // a file, tensor, model or route that does not exist (HTTP 404)
  kUnimplemented,      // a feature of a file format we do not support (names it)
  kDataLoss,           // a file is truncated or corrupt
  kResourceExhausted,  // a queue or memory limit is full (HTTP 429 / 503)
  kUnavailable,        // not ready yet, or shutting down (HTTP 503)
  kDeadlineExceeded,   // a request timed out (HTTP 504)
  kCancelled,          // the client went away
  kPermissionDenied,   // bad or missing API key (HTTP 401)
  kIo,                 // the operating system refused (open, read, mmap, socket)
  kInternal,           // a bug: never caused by input
};

const char* error_code_name(ErrorCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok_status() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid_argument: <message>"
  std::string to_string() const;
  // Prefixes context ("loading model-00001.safetensors: ") to the message, keeping the code.
  Status with_context(const std::string& context) const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status out_of_range(std::string m) { return {ErrorCode::kOutOfRange, std::move(m)}; }
inline Status not_found(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
inline Status unimplemented(std::string m) { return {ErrorCode::kUnimplemented, std::move(m)}; }
inline Status data_loss(std::string m) { return {ErrorCode::kDataLoss, std::move(m)}; }
inline Status resource_exhausted(std::string m) { return {ErrorCode::kResourceExhausted, std::move(m)}; }
inline Status unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
inline Status io_error(std::string m) { return {ErrorCode::kIo, std::move(m)}; }
inline Status internal_error(std::string m) { return {ErrorCode::kInternal, std::move(m)}; }

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  StatusOr(Status status)  // NOLINT: implicit by design
      : status_(status.ok() ? Status(ErrorCode::kInternal, "StatusOr built from an OK status has no value")
                            : std::move(status)) {
    assert(!status_.ok());
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace embedserve

// Propagates a failed Status from an expression returning Status.
#define EMBEDSERVE_RETURN_IF_ERROR(expr)            \
  do {                                               \
    ::embedserve::Status _st = (expr);               \
    if (!_st.ok()) return _st;                       \
  } while (0)

#define EMBEDSERVE_CONCAT_INNER(a, b) a##b
#define EMBEDSERVE_CONCAT(a, b) EMBEDSERVE_CONCAT_INNER(a, b)
// `EMBEDSERVE_ASSIGN_OR_RETURN(auto x, f());` unwraps a StatusOr or returns its Status.
#define EMBEDSERVE_ASSIGN_OR_RETURN(lhs, expr) \
  EMBEDSERVE_ASSIGN_OR_RETURN_IMPL(EMBEDSERVE_CONCAT(_statusor_, __LINE__), lhs, expr)
#define EMBEDSERVE_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                     \
  if (!tmp.ok()) return tmp.status();                    \
  lhs = std::move(tmp).value()
