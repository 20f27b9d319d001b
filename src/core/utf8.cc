// UTF-8 validation (RFC 3629) and decoding.
#include "core/utf8.h"

#include <string>

namespace embedserve {

Status validate_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) { ++i; continue; }
    size_t len;
    char32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return invalid_argument("input is not valid UTF-8 (bad lead byte at offset " + std::to_string(i) + ")");
    if (i + len > n) return invalid_argument("input is not valid UTF-8 (truncated sequence at offset " + std::to_string(i) + ")");
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80)
        return invalid_argument("input is not valid UTF-8 (bad continuation byte at offset " + std::to_string(i + k) + ")");
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
      return invalid_argument("input is not valid UTF-8 (overlong, surrogate or out-of-range sequence at offset " + std::to_string(i) + ")");
    i += len;
  }
  return Status();
}

char32_t decode_utf8(std::string_view s, size_t& pos) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  unsigned char c = p[pos];
  if (c < 0x80) { ++pos; return c; }
  if (c < 0xE0) { char32_t cp = ((c & 0x1F) << 6) | (p[pos + 1] & 0x3F); pos += 2; return cp; }
  if (c < 0xF0) {
    char32_t cp = ((c & 0x0F) << 12) | ((p[pos + 1] & 0x3F) << 6) | (p[pos + 2] & 0x3F);
    pos += 3;
    return cp;
  }
  char32_t cp = ((c & 0x07) << 18) | ((p[pos + 1] & 0x3F) << 12) | ((p[pos + 2] & 0x3F) << 6) | (p[pos + 3] & 0x3F);
  pos += 4;
  return cp;
}

void append_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace embedserve
