// Which rows each pooling mode reads, and mean pooling's arithmetic.
#include "model/pooling.h"

#include <gtest/gtest.h>

#include <cmath>

#include "ops/context.h"
#include "ops/pool.h"

namespace embedserve {
namespace {

TEST(Pooling, LastTokenAndClsPickOneRowPerSequence) {
  const std::vector<int32_t> offsets = {0, 3, 4, 10};
  EXPECT_EQ(pooled_rows(offsets, Pooling::kLastToken), (std::vector<int32_t>{2, 3, 9}));
  EXPECT_EQ(pooled_rows(offsets, Pooling::kCls), (std::vector<int32_t>{0, 3, 4}));
  EXPECT_TRUE(pooled_rows(offsets, Pooling::kMean).empty());
}

TEST(Pooling, MeanAveragesEachSequencesRows) {
  auto ctx = ops::DeviceContext::create(ops::ContextOptions{});
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  const std::vector<int32_t> offsets = {0, 1, 4};
  std::vector<float> hidden = {1, 2, /* seq 1: */ 0, 3, 6, 9, 3, -3};
  std::vector<float> out(4, NAN);
  const ops::Index index{offsets, offsets.data()};
  const Status st = ops::pool(**ctx, ops::Tensor::matrix(hidden.data(), DType::kF32, 4, 2), index, false,
                              ops::Tensor::matrix(out.data(), DType::kF32, 2, 2));
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 3}));
}

}  // namespace
}  // namespace embedserve
