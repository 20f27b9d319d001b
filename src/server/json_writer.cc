// JsonWriter: string escaping with UTF-8 repair, and shortest round-trip float formatting.
#include "server/json_writer.h"

#include <charconv>
#include <cmath>

#include "core/utf8.h"

namespace embedserve {
namespace {

// Length of the well-formed UTF-8 sequence at s[i], or 0 when the bytes there are not one.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = static_cast<unsigned char>(s[i]);
  size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len <= 1 || i + len > s.size()) return len == 1 ? 1 : 0;
  return validate_utf8(s.substr(i, len)).ok() ? len : 0;
}

}  // namespace

void JsonWriter::key(std::string_view k) {
  string(k);
  out_ += ':';
  need_comma_ = false;
}

void JsonWriter::string(std::string_view s) {
  separate();
  out_ += '"';
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8_sequence_length(s, i);
      if (len == 0) {
        out_ += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER for one bad byte
        i += 1;
      } else {
        out_.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"': out_ += "\\\""; break;
      case '\\': out_ += "\\\\"; break;
      case '\n': out_ += "\\n"; break;
      case '\r': out_ += "\\r"; break;
      case '\t': out_ += "\\t"; break;
      case '\b': out_ += "\\b"; break;
      case '\f': out_ += "\\f"; break;
      default:
        if (c < 0x20) {
          out_ += "\\u00";
          out_ += kHex[c >> 4];
          out_ += kHex[c & 0xF];
        } else {
          out_ += static_cast<char>(c);
        }
    }
    i += 1;
  }
  out_ += '"';
  need_comma_ = true;
}

void JsonWriter::integer(int64_t v) {
  separate();
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  need_comma_ = true;
}

void JsonWriter::append_float(float v) {
  if (!std::isfinite(v)) {
    out_ += "null";
    return;
  }
  if (v == 0.0f && std::signbit(v)) {
    out_ += "-0.0";  // "-0" reads back as the integer 0 in most JSON parsers (Python's included), losing the sign
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest representation that round-trips
  out_.append(buf, r.ptr);
}

void JsonWriter::number(float v) {
  separate();
  append_float(v);
  need_comma_ = true;
}

void JsonWriter::float_array(std::span<const float> values) {
  separate();
  out_.reserve(out_.size() + values.size() * 13 + 2);  // "-0.012345678," is the common worst case
  out_ += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out_ += ',';
    append_float(values[i]);
  }
  out_ += ']';
  need_comma_ = true;
}

}  // namespace embedserve
