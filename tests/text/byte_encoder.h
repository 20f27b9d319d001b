// ByteEncoder: a TextEncoder with one id per byte and special token 500 appended, so the text pipeline and
// the server can be tested without a vocabulary file.
#pragma once

#include <string>
#include <vector>

#include "text/text_encoder.h"

namespace embedserve::testing {

class ByteEncoder : public TextEncoder {
 public:
  static constexpr int32_t kEos = 500;
  StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens,
                                        size_t max_length) const override {
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    if (add_special_tokens) {
      if (max_length && ids.size() + 1 > max_length) ids.resize(max_length - 1);
      ids.push_back(kEos);
    } else if (max_length && ids.size() > max_length) {
      ids.resize(max_length);
    }
    return ids;
  }
  StatusOr<std::string> decode(std::span<const int32_t> ids) const override {
    std::string text;
    for (int32_t id : ids) {
      if (id == kEos) text += "<eos>";
      else if (id < 0 || id > 255) return invalid_argument("id " + std::to_string(id) + " is not a byte");
      else text.push_back(static_cast<char>(id));
    }
    return text;
  }
};

}  // namespace embedserve::testing
