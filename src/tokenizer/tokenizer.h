// Tokenizer: Hugging Face tokenizer.json (byte-level BPE, Qwen2/Qwen3 family) reproduced exactly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace embedserve {

struct EncodeOptions {
  bool add_special_tokens = true;  // run the post-processor (Qwen3-Embedding: append <|endoftext|>)
  size_t max_length = 0;           // 0: no truncation. Otherwise keep at most max_length ids *including*
                                   // the tokens the post-processor adds (HF truncation semantics: the
                                   // content is cut, the appended EOS is kept).
  bool truncate_from_front = false;  // with max_length: keep the end of the content (HF direction "left")
  size_t refuse_above = 0;  // 0: no limit. Otherwise a text whose ids (special tokens included) would number
                            // more than this is an out_of_range error, found without tokenising past the limit.
};

class Tokenizer {
 public:
  // `path` is a tokenizer.json or a directory holding one (and, optionally, tokenizer_config.json).
  // An unsupported feature of the file gives an unimplemented error that names it.
  static StatusOr<std::unique_ptr<Tokenizer>> load(const std::filesystem::path& path);
  ~Tokenizer();

  // Same ids as tokenizers.Tokenizer.encode(text, add_special_tokens).ids. Text that is not valid
  // UTF-8 is an invalid_argument. Thread-safe: encode may be called from many threads at once.
  // The work is bounded by the limits, not by the text: with max_length or refuse_above, byte-pair merging
  // stops once enough ids exist (tokenizer.cc explains why the result is the same); what remains linear in the
  // text is a validation scan, NFC where the text is not already NFC, and the split of the pieces.
  StatusOr<std::vector<int32_t>> encode(std::string_view text, const EncodeOptions& options = {}) const;
  // How many tokens the post-processor adds to one sequence (1 for Qwen3-Embedding's EOS).
  size_t num_special_tokens_to_add() const;

  // Ids back to text (byte-level decoding); unknown ids are an invalid_argument.
  StatusOr<std::string> decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The most bytes of (normalised) text one token can stand for: the longest vocabulary entry or added token
  // (128 for Qwen3: 128 spaces). A text of B normalised bytes therefore has at least ceil(B / this) tokens.
  size_t max_token_bytes() const;
  // One past the largest id the tokenizer can produce (vocab + added tokens): 151669 for Qwen3.
  int32_t vocab_size() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedserve
