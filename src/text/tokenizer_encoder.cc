// TokenizerEncoder: forwards to Tokenizer::encode / decode (both const and thread-safe).
#include "text/tokenizer_encoder.h"

namespace embedserve {

StatusOr<std::vector<int32_t>> TokenizerEncoder::encode(std::string_view text, bool add_special_tokens,
                                                        size_t max_length) const {
  EncodeOptions options;
  options.add_special_tokens = add_special_tokens;
  options.max_length = max_length;
  return tokenizer_->encode(text, options);
}

StatusOr<std::string> TokenizerEncoder::decode(std::span<const int32_t> ids) const { return tokenizer_->decode(ids); }

}  // namespace embedserve
