// TextPipeline: text → the token ids the engine embeds, one definition for the server and `embedserve embed`:
// prompt prefix, tokenisation with the post-processor's EOS, truncation that keeps the EOS (or an error naming
// the limit), and every id checked against the model's embedding table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "text/option_names.h"
#include "text/prompt.h"
#include "text/text_encoder.h"

namespace embedserve {

// What to do with an input longer than the limit.
struct Truncation {
  bool enabled = false;   // false: an over-long input is an out_of_range error naming the limit
  bool keep_end = false;  // cut from the front instead of the end (TEI's truncation_direction "Left")
  size_t max_tokens = 0;  // cut to this many tokens, special tokens included; 0: the pipeline's limit
};

class TextPipeline {
 public:
  // `encoder` must outlive the pipeline. max_tokens: the longest sequence accepted, special tokens included
  // (the context length; 0: no limit). vocab_size: rows of the model's embedding table — ids past it have no
  // vector (the 4B/8B tables end at 151665 while the tokenizer reaches 151668).
  TextPipeline(const TextEncoder& encoder, PromptConfig prompts, size_t max_tokens, int vocab_size,
               OptionNames names);

  // The prefix for every text of one request or file (see choose_prefix).
  StatusOr<std::string> prefix(const PromptChoice& choice) const;

  // prefix + text → int32 [len] ids, EOS appended. Errors: the tokenizer's (invalid_argument, e.g. bad UTF-8);
  // no tokens; longer than the limit without truncation (out_of_range); an id past the embedding table.
  // Messages start "the text ..." so a caller can put where it came from in front.
  StatusOr<std::vector<int32_t>> encode(std::string_view prefix, std::string_view text,
                                        const Truncation& truncation) const;

  // Token ids a client sent instead of text: every id checked against the table, then the same limit and
  // truncation (a plain cut: the ids are the client's own, special tokens included).
  StatusOr<std::vector<int32_t>> check_ids(std::vector<int32_t> ids, const Truncation& truncation) const;

  const TextEncoder& encoder() const { return encoder_; }
  size_t max_tokens() const { return max_tokens_; }
  const OptionNames& names() const { return names_; }

 private:
  StatusOr<std::vector<int32_t>> tokenize(std::string_view text, const Truncation& truncation) const;
  size_t cut_length(const Truncation& truncation) const;
  // Errors start with `subject` ("the text", "the input"), so a caller can put where it came from in front.
  Status check_length(std::string_view subject, size_t n_tokens) const;
  Status check_vocabulary(std::string_view subject, std::span<const int32_t> ids) const;

  const TextEncoder& encoder_;
  const PromptConfig prompts_;
  const size_t max_tokens_;
  const int vocab_size_;
  const OptionNames names_;
};

}  // namespace embedserve
