// graph_bucket and pad_to_bucket: the shapes small batches run as, so that recorded graphs repeat.
#include "model/graph_buckets.h"

namespace embedserve {

namespace {

// The multiple a bucket of `tokens` tokens rounds to: 16, or past 256 tokens the power of two that keeps the padding
// under 1/8 of them.
int64_t token_step(int64_t tokens) {
  int64_t step = 16;
  while (tokens > 16 * step) step *= 2;
  return step;
}

bool power_of_two(int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

bool graph_bucket(int64_t tokens, int64_t sequences, int64_t max_tokens, GraphBucket* bucket) {
  if (tokens < 1 || sequences < 1 || tokens < sequences || tokens > max_tokens) return false;
  // A batch already of a bucket's shape runs as it is (a 16-token query: no padding sequence to pay for).
  if (power_of_two(sequences) && tokens % token_step(tokens) == 0) {
    *bucket = GraphBucket{tokens, sequences};
    return true;
  }
  int64_t padded_sequences = 2;
  while (padded_sequences < sequences + 1) padded_sequences *= 2;
  // Each padding sequence holds at least one token.
  const int64_t needed = tokens + (padded_sequences - sequences);
  const int64_t step = token_step(needed);
  const int64_t padded_tokens = (needed + step - 1) / step * step;
  if (padded_tokens > max_tokens) return false;
  *bucket = GraphBucket{padded_tokens, padded_sequences};
  return true;
}

void pad_to_bucket(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, const GraphBucket& bucket,
                   int32_t pad_id, BucketedBatch* padded) {
  padded->token_ids.assign(token_ids.begin(), token_ids.end());
  padded->token_ids.resize(static_cast<size_t>(bucket.tokens), pad_id);
  padded->seq_offsets.assign(seq_offsets.begin(), seq_offsets.end());
  const int64_t own = static_cast<int64_t>(seq_offsets.size()) - 1;
  if (bucket.sequences == own) return;  // the batch has its bucket's shape: nothing to add
  for (int64_t s = own; s + 1 < bucket.sequences; ++s) padded->seq_offsets.push_back(padded->seq_offsets.back() + 1);
  padded->seq_offsets.push_back(static_cast<int32_t>(bucket.tokens));
}

}  // namespace embedserve
