// TextPipeline: prefix, tokenise, truncate or refuse, check the vocabulary.
#include "text/text_pipeline.h"

#include <algorithm>

namespace embedserve {

TextPipeline::TextPipeline(const TextEncoder& encoder, PromptConfig prompts, size_t max_tokens, int vocab_size,
                           OptionNames names)
    : encoder_(encoder), prompts_(std::move(prompts)), max_tokens_(max_tokens), vocab_size_(vocab_size),
      names_(std::move(names)) {}

StatusOr<std::string> TextPipeline::prefix(const PromptChoice& choice) const {
  return choose_prefix(choice, prompts_, names_);
}

size_t TextPipeline::cut_length(const Truncation& truncation) const {
  if (!truncation.enabled) return 0;
  if (truncation.max_tokens == 0) return max_tokens_;
  return max_tokens_ ? std::min(truncation.max_tokens, max_tokens_) : truncation.max_tokens;
}

StatusOr<std::vector<int32_t>> TextPipeline::tokenize(std::string_view text, const Truncation& truncation) const {
  // The limits go to the tokenizer, so a text far past them costs what the limit does, not what the text does:
  // truncation tokenises only the part kept, and without it a text is refused as soon as it surely has too many
  // tokens (a 20 MB text in milliseconds rather than seconds and gigabytes).
  EncodeLimits limits;
  limits.max_length = cut_length(truncation);
  limits.keep_end = truncation.keep_end;
  if (limits.max_length == 0) limits.refuse_above = max_tokens_;
  return encoder_.encode(text, true, limits);
}

Status TextPipeline::check_length(std::string_view subject, size_t n_tokens) const {
  if (n_tokens == 0) return invalid_argument(std::string(subject) + " has no tokens");
  if (max_tokens_ && n_tokens > max_tokens_)
    return out_of_range(std::string(subject) + " has " + std::to_string(n_tokens) + " tokens, more than the limit of " +
                        std::to_string(max_tokens_) + "; " + names_.truncate_hint);
  return Status();
}

Status TextPipeline::check_vocabulary(std::string_view subject, std::span<const int32_t> ids) const {
  for (int32_t id : ids) {
    if (id >= 0 && id < vocab_size_) continue;
    // Show the token when the tokenizer knows it: "<think>" says more than 151667.
    std::string piece;
    if (auto decoded = encoder_.decode(std::span<const int32_t>(&id, 1)); decoded.ok()) piece = " (" + *decoded + ")";
    return invalid_argument(std::string(subject) + " holds token id " + std::to_string(id) + piece +
                            ", which has no row in the model's embedding table (vocab_size " +
                            std::to_string(vocab_size_) + ", ids 0.." + std::to_string(vocab_size_ - 1) +
                            "); remove it");
  }
  return Status();
}

StatusOr<std::vector<int32_t>> TextPipeline::encode(std::string_view prefix, std::string_view text,
                                                    const Truncation& truncation) const {
  auto ids = prefix.empty() ? tokenize(text, truncation) : tokenize(std::string(prefix).append(text), truncation);
  if (!ids.ok() && ids.status().code() == ErrorCode::kOutOfRange)
    return out_of_range("the text has more than " + std::to_string(max_tokens_) + " tokens, the limit; " +
                        names_.truncate_hint);
  if (!ids.ok()) return ids.status().with_context("the text");
  EMBEDSERVE_RETURN_IF_ERROR(check_length("the text", ids->size()));
  EMBEDSERVE_RETURN_IF_ERROR(check_vocabulary("the text", *ids));
  return ids;
}

StatusOr<std::vector<int32_t>> TextPipeline::check_ids(std::vector<int32_t> ids, const Truncation& truncation) const {
  EMBEDSERVE_RETURN_IF_ERROR(check_vocabulary("the input", ids));
  const size_t cut = cut_length(truncation);
  if (cut && ids.size() > cut) {
    const size_t drop = ids.size() - cut;
    if (truncation.keep_end) ids.erase(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(drop));
    else ids.resize(cut);
  }
  EMBEDSERVE_RETURN_IF_ERROR(check_length("the input", ids.size()));
  return ids;
}

}  // namespace embedserve
