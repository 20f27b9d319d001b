// JsonWriter: appends JSON to a std::string without a DOM, so a [2048 x 4096] float response costs one
// pass of std::to_chars and no per-number allocation.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace embedserve {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void begin_object() { separate(); out_ += '{'; need_comma_ = false; }
  void end_object() { out_ += '}'; need_comma_ = true; }
  void begin_array() { separate(); out_ += '['; need_comma_ = false; }
  void end_array() { out_ += ']'; need_comma_ = true; }
  // The next value written belongs to this key.
  void key(std::string_view k);
  // Escapes as RFC 8259 requires. Bytes that are not valid UTF-8 become U+FFFD, so any text (an error
  // message quoting a client's bytes) yields valid JSON; nlohmann's dump() would throw instead.
  void string(std::string_view s);
  void integer(int64_t v);
  void boolean(bool v) { separate(); out_ += v ? "true" : "false"; need_comma_ = true; }
  void null() { separate(); out_ += "null"; need_comma_ = true; }
  // Shortest text that reads back to the same float (std::to_chars); NaN and infinities become null.
  void number(float v);
  void float_array(std::span<const float> values);
  // A value already serialised (e.g. base64 text wrapped in quotes by the caller).
  void raw_value(std::string_view json) { separate(); out_ += json; need_comma_ = true; }

 private:
  void separate() {
    if (need_comma_) out_ += ',';
  }
  void append_float(float v);

  std::string& out_;
  bool need_comma_ = false;
};

}  // namespace embedserve
