// pool_normalize against a double reference: mean pooling over uneven sequences, one-row pooling, with and
// without L2 normalisation.
#include "ops/cuda/pooling_cuda.h"

#include <cuda_bf16.h>

#include <cmath>

#include "device_array.h"

namespace embedserve::cuda {
namespace {

template <typename T>
class PoolingCudaTest : public ::testing::Test {};
using Types = ::testing::Types<float, __nv_bfloat16>;
TYPED_TEST_SUITE(PoolingCudaTest, Types);

TYPED_TEST(PoolingCudaTest, MeanAndNormalizeMatchReference) {
  using T = TypeParam;
  EMBEDSERVE_REQUIRE_GPU();
  const int64_t dim = 301;
  for (const auto& offsets : {std::vector<int32_t>{0, 3, 4, 10, 300}, std::vector<int32_t>{0, 1, 2, 3}})
    for (bool normalize : {false, true}) {
      const int64_t n_seqs = int64_t(offsets.size()) - 1;
      const auto hidden = random_values<T>(offsets.back() * dim, uint32_t(offsets.size()), 2.0f, 0.3f);
      DeviceArray<T> dh(hidden);
      DeviceArray<float> dout(n_seqs * dim);
      DeviceInts doff(offsets);
      ASSERT_TRUE(pool_normalize(dh.get(), dim, doff.get(), n_seqs, normalize, dout.get(), nullptr).ok());
      std::vector<double> want(n_seqs * dim);
      for (int64_t s = 0; s < n_seqs; ++s) {
        double ss = 0;
        for (int64_t c = 0; c < dim; ++c) {
          double sum = 0;
          for (int32_t r = offsets[s]; r < offsets[s + 1]; ++r) sum += hidden[r * dim + c];
          want[s * dim + c] = float(sum / (offsets[s + 1] - offsets[s]));
          ss += want[s * dim + c] * want[s * dim + c];
        }
        if (normalize)
          for (int64_t c = 0; c < dim; ++c) want[s * dim + c] /= std::sqrt(ss);
      }
      // The output is f32 in both modes and the sums are double: a few f32 roundings apart at most.
      EXPECT_LE(relative_error(dout.download(), want), 1e-6) << "normalize " << normalize;
    }
}

}  // namespace
}  // namespace embedserve::cuda
