// linear (cuBLAS through the dlopen'ed table) against a double reference: SGEMM without TF32, and bf16.
#include "ops/cuda/linear_cuda.h"

#include <cuda_bf16.h>

#include <cstdlib>

#include "device_array.h"

namespace embedserve::cuda {
namespace {

template <typename T>
class LinearCudaTest : public ::testing::Test {};
using Types = ::testing::Types<float, __nv_bfloat16>;
TYPED_TEST_SUITE(LinearCudaTest, Types);

TYPED_TEST(LinearCudaTest, MatchesReferenceAtOddShapes) {
  using T = TypeParam;
  EMBEDSERVE_REQUIRE_GPU();
  const char* where = std::getenv("EMBEDSERVE_CUBLAS_PATH");
  auto api = open_cublas(where ? where : "");
  ASSERT_TRUE(api.ok()) << api.status().to_string();
  cublasHandle_t h = nullptr;
  ASSERT_TRUE(cublas_status(*api, api->create(&h), "cublasCreate").ok());
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 33, 70}, {7, 64, 130}, {130, 97, 1000}}) {
    const auto x = random_values<T>(m * k, uint32_t(m), 1.0f);
    const auto w = random_values<T>(n * k, uint32_t(n), 1.0f / std::sqrt(float(k)));
    DeviceArray<T> dx(x), dw(w), dy(m * n);
    Status st = linear(*api, h, dx.get(), dw.get(), dy.get(), m, n, k);
    ASSERT_TRUE(st.ok()) << st.to_string();
    std::vector<double> want(m * n);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double acc = 0;
        for (int64_t p = 0; p < k; ++p) acc += double(x[i * k + p]) * w[j * k + p];
        want[i * n + j] = acc;
      }
    // f32 without TF32: sums of k float products, ~√k · 2^-24 relative (TF32 would give ~5e-4, and fail);
    // bf16: one rounding of the output to bf16 (≈ 1.1e-3 rms), under half a bf16 unit.
    const double tol = std::is_same_v<T, float> ? 2e-6 : unit_roundoff<T>() / 2;
    EXPECT_LE(relative_error(dy.download(), want), tol) << "m " << m << " n " << n << " k " << k;
  }
  api->destroy(h);
}

TEST(LinearCudaShapes, RejectsBadShapes) {
  CublasApi none;
  EXPECT_FALSE(linear(none, nullptr, static_cast<const float*>(nullptr), nullptr, nullptr, 2, 0, 3).ok());
  EXPECT_TRUE(linear(none, nullptr, static_cast<const float*>(nullptr), nullptr, nullptr, 0, 4, 3).ok());
}

}  // namespace
}  // namespace embedserve::cuda
