// TokenizerEncoder: embedserve::Tokenizer behind the TextEncoder interface, for the server and `embedserve embed`.
#pragma once

#include <memory>

#include "text/text_encoder.h"
#include "tokenizer/tokenizer.h"

namespace embedserve {

class TokenizerEncoder : public TextEncoder {
 public:
  explicit TokenizerEncoder(std::unique_ptr<Tokenizer> tokenizer) : tokenizer_(std::move(tokenizer)) {}
  StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens,
                                        const EncodeLimits& limits) const override;
  StatusOr<std::string> decode(std::span<const int32_t> ids) const override;

 private:
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace embedserve
