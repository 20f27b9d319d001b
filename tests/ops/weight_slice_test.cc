// Weights upload as exactly their elements on every backend: a tensor larger than the uploader's chunks whole, and a
// tensor-parallel rank's share of a checkpoint tensor (ops::HostMatrix row and column slices) as that share, strided
// column slices row by row, only the share read and checked.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "op_suite_util.h"
#include "op_test_util.h"
#include "ops/memory.h"
#include "ops/weight_upload.h"

namespace embedserve::testing {
namespace {

class WeightSlices : public OpTest {
 protected:
  // The weight's elements as the host sees them (widened exactly from the backend's weight dtype).
  std::vector<float> download(const ops::Weight& w) const {
    const size_t n = static_cast<size_t>(w.tensor.numel());
    std::vector<float> out(n);
    if (w.tensor.dtype == DType::kF32) {
      check(ops::copy_bytes_to_host(ctx(), w.tensor.data, out.data(), n * 4), "download");
    } else {
      std::vector<uint16_t> bits(n);
      check(ops::copy_bytes_to_host(ctx(), w.tensor.data, bits.data(), n * 2), "download");
      for (size_t i = 0; i < n; ++i) out[i] = from_bf16_bits(bits[i]);
    }
    return out;
  }
};

TEST_P(WeightSlices, RowAndColumnSlicesUploadAsThatShareStacked) {
  const int64_t rows = 6, cols = 10;
  const std::vector<float> a = random_weights(rows * cols, 61, 1.0f), b = random_weights(rows * cols, 62, 1.0f);
  const ops::HostMatrix ma{a.data(), DType::kF32, rows, cols}, mb{b.data(), DType::kF32, rows, cols};
  // Columns 3..6 of a, then rows 2..4 of columns 3..6 of b: a row-parallel share and a stacked one.
  const std::vector<ops::HostMatrix> parts = {ma.column_slice(3, 4), mb.row_slice(2, 3).column_slice(3, 4)};
  auto w = ops::upload_weight(ctx(), parts, "a + b");
  check(w.status(), "upload_weight");
  ASSERT_EQ(w->tensor.rows, rows + 3);
  ASSERT_EQ(w->tensor.cols, 4);
  std::vector<float> want;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 3; c < 7; ++c) want.push_back(a[static_cast<size_t>(r * cols + c)]);
  for (int64_t r = 2; r < 5; ++r)
    for (int64_t c = 3; c < 7; ++c) want.push_back(b[static_cast<size_t>(r * cols + c)]);
  EXPECT_TRUE(same_bits(download(*w), want));
}

TEST_P(WeightSlices, OnlyTheShareIsCheckedAndABadValueInItIsNamedByItsPlace) {
  const int64_t rows = 4, cols = 8;
  std::vector<float> a = random_weights(rows * cols, 63, 1.0f);
  a[1 * cols + 0] = NAN;       // outside columns 4..7: another rank's share, never read here
  a[2 * cols + 5] = INFINITY;  // inside: the share's element 2·4 + 1 = 9
  const ops::HostMatrix m{a.data(), DType::kF32, rows, cols};
  const std::vector<ops::HostMatrix> left = {m.column_slice(0, 4).row_slice(2, 2)}, right = {m.column_slice(4, 4)};
  EXPECT_TRUE(succeeded(ops::upload_weight(ctx(), left, "w").status()));  // rows 2..3 of columns 0..3: all finite
  auto w = ops::upload_weight(ctx(), right, "w");
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("Inf at element 9"), std::string::npos) << w.status().to_string();
}

// Two and a half chunks of the uploader (ops/weight_upload.h), whose workers copy them in any order: every element
// lands in its place, and a NaN in the last chunk is named by its place in the tensor, not in its chunk.
TEST_P(WeightSlices, ATensorOfSeveralChunksArrivesWholeAndABadValueIsNamedByItsPlace) {
  const int64_t cols = 1024, rows = static_cast<int64_t>(ops::WeightUploader::kChunkElements * 5 / 2) / cols;
  std::vector<float> a = random_weights(rows * cols, 64, 1.0f);
  const ops::HostMatrix m{a.data(), DType::kF32, rows, cols};
  auto w = ops::upload_weight(ctx(), std::vector<ops::HostMatrix>{m}, "w");
  check(w.status(), "upload_weight");
  EXPECT_TRUE(same_bits(download(*w), a));  // random_weights: values of the backend's weight dtype
  const size_t bad = 2 * ops::WeightUploader::kChunkElements + 7;
  a[bad] = NAN;
  auto refused = ops::upload_weight(ctx(), std::vector<ops::HostMatrix>{m}, "w");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("NaN at element " + std::to_string(bad)), std::string::npos)
      << refused.status().to_string();
}

EMBEDSERVE_INSTANTIATE_ON_EVERY_BACKEND(WeightSlices);

}  // namespace
}  // namespace embedserve::testing
