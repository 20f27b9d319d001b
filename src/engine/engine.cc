// Engine::embed's input checks, which no backend can skip.
#include "engine/engine.h"

#include <string>

namespace embedserve {

Status Engine::embed(const SequenceBatch& batch, std::span<float> out) {
  EMBEDSERVE_RETURN_IF_ERROR(validate(batch, out));
  if (batch.num_sequences() == 0) return Status();
  return run(batch, out);
}

Status Engine::validate(const SequenceBatch& batch, std::span<const float> out) const {
  const size_t n = batch.num_sequences();
  if (batch.seq_offsets.empty() || batch.seq_offsets.front() != 0 ||
      static_cast<size_t>(batch.seq_offsets.back()) != batch.token_ids.size())
    return internal_error("malformed SequenceBatch: seq_offsets do not cover token_ids");
  if (!batch.raw_vector.empty() && batch.raw_vector.size() != n)
    return internal_error("malformed SequenceBatch: raw_vector has " + std::to_string(batch.raw_vector.size()) +
                          " entries for " + std::to_string(n) + " sequences");
  if (out.size() != n * static_cast<size_t>(info_.hidden_size))
    return internal_error("output buffer holds " + std::to_string(out.size()) + " floats, expected " +
                          std::to_string(n * info_.hidden_size));
  if (info_.workspace_tokens && batch.num_tokens() > info_.workspace_tokens)
    return out_of_range("batch of " + std::to_string(batch.num_tokens()) + " tokens exceeds the engine's workspace of " +
                        std::to_string(info_.workspace_tokens) + " tokens");
  if (batch.chunk) {
    const SequenceChunk& c = *batch.chunk;
    if (!info_.chunked_prefill)
      return internal_error("this engine takes every input whole (its pooling needs all of it at once), not in chunks");
    if (n != 1) return internal_error("a chunk of a longer input rides alone in its batch, not with " +
                                      std::to_string(n - 1) + " other sequences");
    if (c.start + batch.num_tokens() > c.total)
      return internal_error("chunk [" + std::to_string(c.start) + ", " + std::to_string(c.start + batch.num_tokens()) +
                            ") runs past its input of " + std::to_string(c.total) + " tokens");
    if (info_.max_position_embeddings && c.total > static_cast<size_t>(info_.max_position_embeddings))
      return out_of_range("input has " + std::to_string(c.total) + " tokens, more than the model's maximum of " +
                          std::to_string(info_.max_position_embeddings));
  }
  for (size_t i = 0; i < n; ++i) {
    const size_t len = batch.sequence_length(i);
    if (len == 0) return invalid_argument("input " + std::to_string(i) + " has no tokens");
    if (info_.max_position_embeddings && len > static_cast<size_t>(info_.max_position_embeddings))
      return out_of_range("input " + std::to_string(i) + " has " + std::to_string(len) +
                          " tokens, more than the model's maximum of " + std::to_string(info_.max_position_embeddings));
  }
  for (size_t t = 0; t < batch.token_ids.size(); ++t) {
    const int32_t id = batch.token_ids[t];
    if (id < 0 || id >= info_.vocab_size)
      return invalid_argument("token id " + std::to_string(id) + " is outside the model's vocabulary [0, " +
                              std::to_string(info_.vocab_size) + ")");
  }
  return Status();
}

}  // namespace embedserve
