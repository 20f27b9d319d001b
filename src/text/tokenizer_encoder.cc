// TokenizerEncoder: forwards to Tokenizer::encode / decode (both const and thread-safe).
#include "text/tokenizer_encoder.h"

namespace embedserve {

StatusOr<std::vector<int32_t>> TokenizerEncoder::encode(std::string_view text, bool add_special_tokens,
                                                        const EncodeLimits& limits) const {
  EncodeOptions options;
  options.add_special_tokens = add_special_tokens;
  options.max_length = limits.max_length;
  options.truncate_from_front = limits.keep_end;
  options.refuse_above = limits.refuse_above;
  return tokenizer_->encode(text, options);
}

StatusOr<std::string> TokenizerEncoder::decode(std::span<const int32_t> ids) const { return tokenizer_->decode(ids); }

}  // namespace embedserve
