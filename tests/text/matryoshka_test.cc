// Matryoshka truncation: leading components renormalised, rows in order, and the dimensions range check.
#include "text/matryoshka.h"

#include <gtest/gtest.h>

#include <cmath>

namespace embedserve {
namespace {

TEST(Matryoshka, L2NormaliseGivesAUnitVectorAndLeavesZeroAlone) {
  std::vector<float> v = {3, 4};
  l2_normalize(v);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> zero = {0, 0, 0};
  l2_normalize(zero);
  EXPECT_EQ(zero, std::vector<float>({0, 0, 0}));
}

TEST(Matryoshka, KeepsTheLeadingComponentsAndRenormalises) {
  const std::vector<float> v = {0.6f, 0.8f, 0.0f, 0.0f};  // a unit vector whose first component alone is 0.6
  std::vector<float> out(1);
  truncate_and_normalize(v, out);
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  std::vector<float> two(2);
  truncate_and_normalize(std::vector<float>{3, 4, 12}, two);
  EXPECT_FLOAT_EQ(two[0], 0.6f);
  EXPECT_FLOAT_EQ(two[1], 0.8f);
}

TEST(Matryoshka, TruncateRowsWorksRowByRow) {
  const std::vector<float> rows = {3, 4, 100,    // f32 [2, 3]
                                   0, -2, 7};
  auto cut = truncate_rows(rows, 3, 2);
  ASSERT_EQ(cut.size(), 4u);
  EXPECT_FLOAT_EQ(cut[0], 0.6f);
  EXPECT_FLOAT_EQ(cut[1], 0.8f);
  EXPECT_FLOAT_EQ(cut[2], 0.0f);
  EXPECT_FLOAT_EQ(cut[3], -1.0f);
  // TEI's normalize=false: the raw leading components.
  EXPECT_EQ(truncate_rows(rows, 3, 2, false), std::vector<float>({3, 4, 0, -2}));
  EXPECT_TRUE(truncate_rows({}, 3, 2).empty());
}

TEST(Matryoshka, DimensionsMustBeWithinTheHiddenSize) {
  const OptionNames names{"--prompt-name", "--instruction", "--dimensions", ""};
  EXPECT_TRUE(check_dimensions(1, 32, names).ok());
  EXPECT_TRUE(check_dimensions(32, 32, names).ok());
  for (long long bad : {0LL, -4LL, 33LL, 1LL << 40}) {
    Status st = check_dimensions(bad, 32, names);
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_EQ(st.message(),
              "--dimensions must be between 1 and 32 (the model's hidden size), got " + std::to_string(bad));
  }
}

}  // namespace
}  // namespace embedserve
