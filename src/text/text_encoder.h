// TextEncoder: the tokenizer calls the text pipeline needs. TokenizerEncoder adapts embedserve::Tokenizer to it;
// tests use a trivial encoder, so the server's and the pipeline's tests need no vocabulary file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace embedserve {

class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  // Token ids of `text`; with add_special_tokens, the post-processor's tokens too (Qwen3-Embedding
  // appends <|endoftext|>). max_length 0: no truncation; otherwise at most max_length ids, content cut
  // from the end and the special tokens kept. Must be thread-safe.
  virtual StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens,
                                                size_t max_length) const = 0;
  // The text of `ids`, for error messages that show the token at fault. Must be thread-safe.
  virtual StatusOr<std::string> decode(std::span<const int32_t> ids) const = 0;
};

}  // namespace embedserve
