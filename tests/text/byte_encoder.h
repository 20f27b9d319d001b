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
                                        const EncodeLimits& limits) const override {
    const size_t specials = add_special_tokens ? 1 : 0;
    if (limits.refuse_above && text.size() + specials > limits.refuse_above)
      return out_of_range("has more than " + std::to_string(limits.refuse_above) + " tokens");
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    if (const size_t keep = limits.max_length > specials ? limits.max_length - specials : 0;
        limits.max_length && ids.size() > keep) {
      if (limits.keep_end) ids.erase(ids.begin(), ids.end() - static_cast<ptrdiff_t>(keep));
      else ids.resize(keep);
    }
    if (add_special_tokens) ids.push_back(kEos);
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
