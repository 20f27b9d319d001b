// rms_norm (bf16, f32) against a CPU reference with transformers' rounding order, at odd and real shapes.
#include "ops/cuda/rms_norm_cuda.h"

#include <cmath>
#include <random>
#include <vector>

#include "gpu_test_util.h"
#include "ops/cuda/cuda_check.h"

namespace embedserve::cuda {
namespace {

std::vector<uint16_t> reference(const std::vector<uint16_t>& x, const std::vector<uint16_t>& w, int64_t rows,
                                int64_t cols, float eps) {
  std::vector<uint16_t> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    float ss = 0.0f;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = bf16_bits_to_float(x[r * cols + c]);
      ss += v * v;
    }
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(cols) + eps);
    for (int64_t c = 0; c < cols; ++c) {
      const float normed = bf16_bits_to_float(float_to_bf16_bits(bf16_bits_to_float(x[r * cols + c]) * inv));
      out[r * cols + c] = float_to_bf16_bits(bf16_bits_to_float(w[c]) * normed);
    }
  }
  return out;
}

void check_shape(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  std::vector<uint16_t> x(rows * cols), w(cols);
  for (auto& v : x) v = float_to_bf16_bits(dist(rng));
  for (auto& v : w) v = float_to_bf16_bits(1.0f + 0.1f * dist(rng));
  const float eps = 1e-6f;

  void *dx = nullptr, *dw = nullptr, *dout = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, x.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dw, w.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dout, x.size() * 2), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dx, x.data(), x.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dw, w.data(), w.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemset(dout, 0xFF, x.size() * 2), cudaSuccess);  // poison: 0xFFFF is a NaN in bf16

  Status st = rms_norm<__nv_bfloat16>(static_cast<const __nv_bfloat16*>(dx), static_cast<const __nv_bfloat16*>(dw),
                            static_cast<__nv_bfloat16*>(dout), rows, cols, eps, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> got(x.size());
  ASSERT_EQ(cudaMemcpy(got.data(), dout, got.size() * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dout);

  const auto want = reference(x, w, rows, cols, eps);
  // rsqrtf differs from 1/sqrtf by up to 2 float ulps, which can move a bf16 rounding by one step
  // (2^-8 relative) on each of the two roundings: allow 2 bf16 ulps, never a NaN or an unwritten output.
  int64_t worst_ulps = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_FALSE(std::isnan(bf16_bits_to_float(got[i]))) << "unwritten or NaN output at " << i;
    const int64_t ulps = std::abs(static_cast<int64_t>(static_cast<int16_t>(got[i])) -
                                  static_cast<int64_t>(static_cast<int16_t>(want[i])));
    worst_ulps = std::max(worst_ulps, ulps);
  }
  EXPECT_LE(worst_ulps, 2) << "rows " << rows << " cols " << cols;
}

TEST(RmsNormCudaTest, MatchesReferenceAtOddAndRealShapes) {
  EMBEDSERVE_REQUIRE_GPU();
  check_shape(1, 1, 1);
  check_shape(3, 7, 2);        // scalar path
  check_shape(5, 130, 3);      // scalar path, more columns than threads
  check_shape(17, 128, 4);     // vector path: q_norm / k_norm over head_dim
  check_shape(33, 1024, 5);    // 0.6B hidden
  check_shape(9, 2560, 6);     // 4B hidden
  check_shape(4, 4096, 7);     // 8B hidden
}

// The f32 variant (the parity mode): transformers' float32 Qwen3RMSNorm has no roundings to copy, so the
// only difference is rsqrtf against 1/sqrt (≤ 2 ulps) and the order of the f32 sum of squares.
TEST(RmsNormCudaTest, F32MatchesReference) {
  EMBEDSERVE_REQUIRE_GPU();
  for (auto [rows, cols] : {std::pair<int64_t, int64_t>{3, 7}, {17, 128}, {9, 2560}}) {
    std::mt19937 rng(static_cast<uint32_t>(cols));
    std::normal_distribution<float> dist(0.0f, 2.0f);
    std::vector<float> x(rows * cols), w(cols), got(rows * cols);
    for (auto& v : x) v = dist(rng);
    for (auto& v : w) v = 1.0f + 0.1f * dist(rng);
    float *dx = nullptr, *dw = nullptr, *dout = nullptr;
    ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dw, w.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMalloc(&dout, x.size() * 4), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(dw, w.data(), w.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemset(dout, 0xFF, x.size() * 4), cudaSuccess);  // NaN poison
    ASSERT_TRUE(rms_norm<float>(dx, dw, dout, rows, cols, 1e-6f, nullptr).ok());
    ASSERT_EQ(cudaMemcpy(got.data(), dout, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    cudaFree(dx);
    cudaFree(dw);
    cudaFree(dout);
    for (int64_t r = 0; r < rows; ++r) {
      double ss = 0;
      for (int64_t c = 0; c < cols; ++c) ss += double(x[r * cols + c]) * x[r * cols + c];
      const double inv = 1.0 / std::sqrt(ss / cols + 1e-6);
      for (int64_t c = 0; c < cols; ++c) {
        const double want = w[c] * (x[r * cols + c] * inv);
        ASSERT_NEAR(got[r * cols + c], want, 8.0 / (1 << 23) * std::abs(want) + 1e-30) << r << "," << c;
      }
    }
  }
}

TEST(RmsNormCudaTest, RejectsBadShapes) {
  EXPECT_FALSE(rms_norm<__nv_bfloat16>(nullptr, nullptr, nullptr, 4, 0, 1e-6f, nullptr).ok());
  EXPECT_FALSE(rms_norm<__nv_bfloat16>(nullptr, nullptr, nullptr, -1, 8, 1e-6f, nullptr).ok());
  EXPECT_TRUE(rms_norm<__nv_bfloat16>(nullptr, nullptr, nullptr, 0, 8, 1e-6f, nullptr).ok());
}

}  // namespace
}  // namespace embedserve::cuda
