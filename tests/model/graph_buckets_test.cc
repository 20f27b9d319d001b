// graph_bucket and pad_to_bucket: which shape a small batch runs as, and how its padding is laid out.
#include "model/graph_buckets.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

GraphBucket bucket_of(int64_t tokens, int64_t sequences, int64_t max_tokens = 1024) {
  GraphBucket b;
  EXPECT_TRUE(graph_bucket(tokens, sequences, max_tokens, &b)) << tokens << " tokens in " << sequences;
  return b;
}

TEST(GraphBuckets, SingleQueriesShareABucketPerSixteenTokens) {
  // One padding sequence of at least one token: a query of 15 tokens still fits 16, one of 17 needs 32.
  for (int64_t n = 1; n <= 15; ++n) EXPECT_EQ(bucket_of(n, 1).tokens, 16) << n;
  for (int64_t n = 17; n <= 31; ++n) EXPECT_EQ(bucket_of(n, 1).tokens, 32) << n;
  EXPECT_EQ(bucket_of(63, 1).tokens, 64);
  EXPECT_EQ(bucket_of(65, 1).tokens, 80);
  for (int64_t n = 1; n <= 200; ++n) EXPECT_EQ(bucket_of(n, 1).sequences, n % 16 == 0 ? 1 : 2) << n;
}

TEST(GraphBuckets, ABatchOfABucketsShapeIsItsOwnBucket) {
  for (int64_t n : {16, 32, 48, 64, 128, 256, 288, 1024}) {
    const GraphBucket b = bucket_of(n, 1);
    EXPECT_EQ(b.tokens, n);
    EXPECT_EQ(b.sequences, 1);
  }
  EXPECT_EQ(bucket_of(64, 4).tokens, 64);
  EXPECT_EQ(bucket_of(64, 4).sequences, 4);
  EXPECT_EQ(bucket_of(64, 3).sequences, 4);  // 3 sequences: padded
  EXPECT_EQ(bucket_of(64, 3).tokens, 80);
  EXPECT_EQ(bucket_of(272, 1).tokens, 288);  // past 256 a multiple of 32, so 272 is padded
}

TEST(GraphBuckets, SequencesRoundUpToAPowerOfTwoWithRoomForOnePaddingSequence) {
  EXPECT_EQ(bucket_of(40, 2).sequences, 4);
  EXPECT_EQ(bucket_of(40, 3).sequences, 4);
  EXPECT_EQ(bucket_of(40, 4).sequences, 8);  // 40 tokens are no multiple of 16: padded
  EXPECT_EQ(bucket_of(100, 31).sequences, 32);
  EXPECT_EQ(bucket_of(100, 32).sequences, 64);
  // 3 sequences of 40 tokens in 4: one padding sequence, 41 tokens at least.
  EXPECT_EQ(bucket_of(40, 3).tokens, 48);
  // 7 one-token sequences in 8 plus 1 to pad: each padding sequence holds one token or more.
  EXPECT_EQ(bucket_of(7, 7).tokens, 16);
  EXPECT_EQ(bucket_of(17, 16).tokens, 48);  // 16 sequences in 32: 16 padding tokens at least, 33 in all
  EXPECT_EQ(bucket_of(16, 16).tokens, 16);  // a bucket's shape: as it is
}

TEST(GraphBuckets, PastOneHundredTwentyEightTokensThePaddingIsUnderAnEighth) {
  for (int64_t n = 1; n <= 4000; ++n) {
    const GraphBucket b = bucket_of(n, 1, 1 << 20);
    ASSERT_GE(b.tokens, n);
    if (n + 1 > 128) {
      EXPECT_LT(8 * (b.tokens - (n + 1)), n + 1) << n;
    }
    EXPECT_EQ(b.tokens % 16, 0) << n;
  }
  EXPECT_EQ(bucket_of(250, 1).tokens, 256);
  EXPECT_EQ(bucket_of(257, 1).tokens, 288);  // 258 tokens with the padding: multiples of 32 past 256
  EXPECT_EQ(bucket_of(900, 1).tokens, 960);
}

TEST(GraphBuckets, ABatchPastTheLimitHasNoBucket) {
  GraphBucket b{7, 7};
  EXPECT_FALSE(graph_bucket(1023, 1, 1008, &b));  // needs 1,024
  EXPECT_FALSE(graph_bucket(2048, 1, 1024, &b));  // past the limit itself
  EXPECT_FALSE(graph_bucket(20, 1, 16, &b));
  EXPECT_FALSE(graph_bucket(0, 1, 1024, &b));
  EXPECT_FALSE(graph_bucket(3, 4, 1024, &b));  // an empty sequence: not a batch
  EXPECT_EQ(b.tokens, 7);                      // left alone
  EXPECT_TRUE(graph_bucket(1023, 1, 1024, &b));
  EXPECT_EQ(b.tokens, 1024);
}

TEST(GraphBuckets, PaddingFollowsTheBatchUnchanged) {
  const std::vector<int32_t> ids = {5, 6, 7, 8, 9}, offsets = {0, 2, 5};
  const GraphBucket b = bucket_of(5, 2);  // 4 sequences, 16 tokens
  ASSERT_EQ(b.sequences, 4);
  ASSERT_EQ(b.tokens, 16);
  BucketedBatch p;
  p.token_ids = {1, 2, 3};  // overwritten, not appended to
  pad_to_bucket(ids, offsets, b, /*pad_id=*/0, &p);
  EXPECT_EQ(p.token_ids, (std::vector<int32_t>{5, 6, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
  // One padding sequence of one token, then the last one holding the other 10.
  EXPECT_EQ(p.seq_offsets, (std::vector<int32_t>{0, 2, 5, 6, 16}));
  // A batch of its bucket's shape is laid out as it is.
  const std::vector<int32_t> own_ids(16, 3), own_offsets = {0, 16};
  pad_to_bucket(own_ids, own_offsets, bucket_of(16, 1), 0, &p);
  EXPECT_EQ(p.token_ids, own_ids);
  EXPECT_EQ(p.seq_offsets, own_offsets);
}

}  // namespace
}  // namespace embedserve
