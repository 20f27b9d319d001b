// embedding, gather_rows, add and silu_mul against CPU references in f32 and bf16, at odd sizes.
#include <cuda_bf16.h>

#include <cmath>

#include "device_array.h"
#include "ops/cuda/elementwise_cuda.h"
#include "ops/cuda/embedding_cuda.h"

namespace embedserve::cuda {
namespace {

template <typename T>
class ElementwiseCudaTest : public ::testing::Test {};
using Types = ::testing::Types<float, __nv_bfloat16>;
TYPED_TEST_SUITE(ElementwiseCudaTest, Types);

TYPED_TEST(ElementwiseCudaTest, EmbeddingAndGatherCopyRowsExactly) {
  using T = TypeParam;
  EMBEDSERVE_REQUIRE_GPU();
  const int64_t vocab = 37, dim = 13;
  const auto table = random_values<T>(vocab * dim, 1);
  const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 2, 36};
  DeviceArray<T> d_table(table), d_out(ids.size() * dim), d_gathered(ids.size() * dim);
  DeviceInts d_ids(ids);
  ASSERT_TRUE(embedding(d_table.get(), dim, d_ids.get(), int64_t(ids.size()), d_out.get(), nullptr).ok());
  ASSERT_TRUE(gather_rows<T>(d_table.get(), dim, d_ids.get(), int64_t(ids.size()), d_gathered.get(), nullptr).ok());
  const auto got = d_out.download(), gathered = d_gathered.download();
  for (size_t r = 0; r < ids.size(); ++r)
    for (int64_t c = 0; c < dim; ++c) {
      ASSERT_EQ(got[r * dim + c], table[ids[r] * dim + c]) << "row " << r << " col " << c;
      ASSERT_EQ(gathered[r * dim + c], table[ids[r] * dim + c]) << "row " << r << " col " << c;
    }
}

TYPED_TEST(ElementwiseCudaTest, AddRoundsOnceToT) {
  using T = TypeParam;
  EMBEDSERVE_REQUIRE_GPU();
  for (size_t n : {1001, 4096}) {  // the scalar path, and the 16-byte one
    const auto x = random_values<T>(n, 2), y = random_values<T>(n, 3, 0.01f);
    DeviceArray<T> dx(x), dy(y);
    ASSERT_TRUE(add(dx.get(), dy.get(), int64_t(n), nullptr).ok());
    const auto got = dx.download();
    // f32 addition is the same operation on both sides: the results must be the same bits.
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], representable<T>(x[i] + y[i])) << i;
  }
}

TYPED_TEST(ElementwiseCudaTest, SiluMulMatchesTorchRounding) {
  using T = TypeParam;
  EMBEDSERVE_REQUIRE_GPU();
  for (int64_t d : {37, 64}) {  // the scalar path, and the 16-byte one
    const int64_t n = 7;  // gate and up as the halves of one fused [n, 2d] projection
    const auto gu = random_values<T>(n * 2 * d, 4, 3.0f);
    DeviceArray<T> dgu(gu), dout(n * d);
    ASSERT_TRUE(silu_mul(dgu.get(), dgu.get() + d, 2 * d, dout.get(), n, d, nullptr).ok());
    const auto got = dout.download();
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < d; ++c) {
        const float g = gu[r * 2 * d + c], u = gu[r * 2 * d + d + c];
        const float want = representable<T>(representable<T>(g / (1.0f + std::exp(-g))) * u);
        // The device's expf and libm's may differ by an ulp or two, which can move a rounding to T by one
        // step (twice: the activation and the product): two ulps of T.
        ASSERT_NEAR(got[r * d + c], want, 2 * unit_roundoff<T>() * std::abs(want) + 1e-30) << r << "," << c;
      }
  }
}

TEST(ElementwiseCudaShapes, RejectsBadShapes) {
  EXPECT_FALSE(add<float>(nullptr, nullptr, -1, nullptr).ok());
  EXPECT_FALSE(silu_mul<float>(nullptr, nullptr, 3, nullptr, 2, 4, nullptr).ok());  // stride < d
  EXPECT_TRUE(gather_rows<float>(nullptr, 4, nullptr, 0, nullptr, nullptr).ok());
}

}  // namespace
}  // namespace embedserve::cuda
