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

// How long a text's ids may be. Both limits count the post-processor's tokens.
struct EncodeLimits {
  size_t max_length = 0;    // 0: no truncation; otherwise at most this many ids, the content cut and the
                            // special tokens kept
  bool keep_end = false;    // the cut takes the front of the content instead of its end
  size_t refuse_above = 0;  // 0: none; otherwise more ids than this is an out_of_range error ("has more than N
                            // tokens"), decided without tokenising the text past the limit
};

class TextEncoder {
 public:
  virtual ~TextEncoder() = default;
  // Token ids of `text`; with add_special_tokens, the post-processor's tokens too (Qwen3-Embedding
  // appends <|endoftext|>), within `limits`. Must be thread-safe.
  virtual StatusOr<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens,
                                                const EncodeLimits& limits) const = 0;
  // The text of `ids`, for error messages that show the token at fault. Must be thread-safe.
  virtual StatusOr<std::string> decode(std::span<const int32_t> ids) const = 0;
};

}  // namespace embedserve
