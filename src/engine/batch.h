// The padding-free batch layout that crosses the scheduler → engine boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace embedserve {

// Sequences laid end to end, as flash-attention's varlen kernels and TEI's backends take them:
// no padding, so a batch of different lengths costs only its own tokens, and no padding side
// can be chosen wrongly (the right-padding + last-token-pooling bug cannot happen).
// Positions restart at 0 for every sequence; attention never crosses seq_offsets.
//
// Chunked prefill: an input longer than one batch crosses the boundary in several batches, each holding one
// chunk of it alone (`chunk` set). The engine keeps the chunk's keys and values under chunk->sequence, so the next
// chunk's queries attend over the whole input so far, and pools only at the last chunk; between two chunks the
// scheduler runs other batches, and it ends the sequence early (Engine::end_sequence) when its client has gone.
struct SequenceChunk {
  uint64_t sequence = 0;  // names the input across its chunks (the scheduler's choice, unique while in progress)
  size_t start = 0;       // tokens of the input before this chunk: the chunk's first position
  size_t total = 0;       // the input's full length
};

struct SequenceBatch {
  std::vector<int32_t> token_ids;         // int32 [n_tokens]
  std::vector<int32_t> seq_offsets{0};    // int32 [n_seqs + 1], seq i is [seq_offsets[i], seq_offsets[i+1])
  std::optional<SequenceChunk> chunk;     // set: the batch is one chunk of one longer input, which rides alone
  // uint8 [n_seqs], or empty for all 0: 1 asks for sequence i's pooled vector without the L2 normalisation the
  // model's pipeline ends with (TEI's normalize: false). Other sequences are normalised as always.
  std::vector<uint8_t> raw_vector;

  // Whether the batch's vectors come out of this call: always, except for a chunk before an input's last.
  bool ends_sequences() const { return !chunk || chunk->start + token_ids.size() == chunk->total; }

  size_t num_sequences() const { return seq_offsets.size() - 1; }
  size_t num_tokens() const { return token_ids.size(); }
  size_t sequence_length(size_t i) const { return static_cast<size_t>(seq_offsets[i + 1] - seq_offsets[i]); }
  std::span<const int32_t> sequence(size_t i) const {
    return {token_ids.data() + seq_offsets[i], sequence_length(i)};
  }
  size_t longest_sequence() const {
    size_t m = 0;
    for (size_t i = 0; i < num_sequences(); ++i) m = m > sequence_length(i) ? m : sequence_length(i);
    return m;
  }

  void add(std::span<const int32_t> ids, bool raw = false) {
    if (raw && raw_vector.size() < num_sequences()) raw_vector.resize(num_sequences(), 0);
    token_ids.insert(token_ids.end(), ids.begin(), ids.end());
    seq_offsets.push_back(static_cast<int32_t>(token_ids.size()));
    if (raw || !raw_vector.empty()) raw_vector.push_back(raw ? 1 : 0);
  }
  bool wants_raw(size_t i) const { return i < raw_vector.size() && raw_vector[i]; }
  void clear() {
    token_ids.clear();
    seq_offsets.assign(1, 0);
    chunk.reset();
    raw_vector.clear();
  }
};

}  // namespace embedserve
