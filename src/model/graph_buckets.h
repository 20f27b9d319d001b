// Small batches padded to a few shapes (buckets), so that one recorded CUDA graph serves every batch of a bucket.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace embedserve {

// A batch laid out for its bucket: its own sequences first, unchanged, then padding sequences. Every kernel works
// on rows of one sequence (attention reads only its own sequence's keys) and a row's bits do not depend on how
// many rows its batch has (the batch-invariance tests hold that on every backend that records), so the padding
// changes no bit of the batch's own vectors; its vectors are computed and dropped.
struct BucketedBatch {
  std::vector<int32_t> token_ids;    // the batch's ids, then the padding's
  std::vector<int32_t> seq_offsets;  // the batch's offsets, then one per padding sequence
};

// Where graphs record, batches are padded up to this many tokens: past it a batch of the 4B or 8B is bound by its
// GEMMs, not by launches, so its padding would cost about what a graph saves, and its shapes seldom repeat.
inline constexpr int64_t kMaxBucketTokens = 256;

struct GraphBucket {
  int64_t tokens = 0;
  int64_t sequences = 0;
};

// The bucket of a batch of `tokens` tokens in `sequences` sequences: `sequences` + 1 or more rounded up to a power of
// two (at least one padding sequence, each of at least one token), and the tokens with that padding rounded up to a
// multiple of 16 up to 256 tokens, of 32 up to 512, of 64 up to 1,024, and so on (past 128 tokens, less than 1/8
// of padding). Shapes then repeat: every single query of 17–31 tokens is one bucket. A batch that already has a
// bucket's shape (its sequences a power of two, its tokens such a multiple: a 16- or 32-token query) is its own
// bucket, without padding. Returns false when the bucket would hold more than `max_tokens` tokens, or the batch
// more than that itself (it then runs as it is).
bool graph_bucket(int64_t tokens, int64_t sequences, int64_t max_tokens, GraphBucket* bucket);

// Lays the batch (ids, offsets) out for `bucket`: sequences of one token of `pad_id` until one is left, and that one
// holding the rest of the bucket's tokens.
void pad_to_bucket(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, const GraphBucket& bucket,
                   int32_t pad_id, BucketedBatch* padded);

}  // namespace embedserve
