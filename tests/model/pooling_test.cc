// Which rows each pooling mode reads, and mean pooling's arithmetic.
#include "model/pooling.h"

#include <gtest/gtest.h>

#include <cmath>

namespace embedserve {
namespace {

TEST(Pooling, LastTokenAndClsPickOneRowPerSequence) {
  const std::vector<int32_t> offsets = {0, 3, 4, 10};
  EXPECT_EQ(pooled_rows(offsets, Pooling::kLastToken), (std::vector<int32_t>{2, 3, 9}));
  EXPECT_EQ(pooled_rows(offsets, Pooling::kCls), (std::vector<int32_t>{0, 3, 4}));
  EXPECT_TRUE(pooled_rows(offsets, Pooling::kMean).empty());
}

TEST(Pooling, MeanAveragesEachSequencesRows) {
  const std::vector<int32_t> offsets = {0, 1, 4};
  const std::vector<float> hidden = {1, 2, /* seq 1: */ 0, 3, 6, 9, 3, -3};
  std::vector<float> out(4, NAN);
  mean_pool(hidden.data(), 2, offsets, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 3}));
}

}  // namespace
}  // namespace embedserve
