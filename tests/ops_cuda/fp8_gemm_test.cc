// The FP8 path's CUDA pieces below the op API, on a GPU (skipped without one): the activation quantiser gives the
// host rule's codes and scales bit for bit, and cuBLASLt's GEMM gives the quantised product with both scale paths
// (outer vectors, and the scaling kernel a cuBLASLt without them falls back to).
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "core/float8.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_device.h"
#include "ops/cuda/fp8_cuda.h"
#include "ops/cuda/linear_fp8_cuda.h"
#include "e4m3_codes_check.h"

namespace embedserve::cuda {
namespace {

bool has_fp8_gpu() {
  auto devices = list_devices();
  if (!devices.ok() || devices->empty()) return false;
  return (*devices)[0].compute_major * 10 + (*devices)[0].compute_minor >= 89;
}

// Device memory for a test, freed at the end.
template <typename T>
struct DeviceArray {
  T* ptr = nullptr;
  explicit DeviceArray(const std::vector<T>& host) {
    EXPECT_EQ(cudaMalloc(&ptr, host.size() * sizeof(T) + 16), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> download(size_t n) const {
    std::vector<T> out(n);
    EXPECT_EQ(cudaMemcpy(out.data(), ptr, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  ~DeviceArray() { cudaFree(ptr); }
};

float bf16_round(float f) { return __bfloat162float(__float2bfloat16(f)); }

// The held rows' quantiser codes each value by a reciprocal and one FMA correction instead of a division
// (ops/cuda/fp8_row.cuh, E4m3RowCoder): for every row maximum a bf16 row can have and every value such a row can
// hold, exhaustively, the codes are the division's.
TEST(Fp8Cuda, RowCodesByReciprocalAreTheDivisionsForEveryBf16ValueAndRowScale) {
  if (!has_fp8_gpu()) GTEST_SKIP() << "no GPU with FP8 (compute capability 8.9+) visible";
  const auto check = testing::check_e4m3_row_coder();
  ASSERT_TRUE(check.ran);
  EXPECT_GT(check.pairs, uint64_t{1} << 30);
  EXPECT_EQ(check.mismatches, 0u) << "first: row maximum bf16 0x" << std::hex << check.first_amax << ", value 0x"
                                  << check.first_value;
}

TEST(Fp8Cuda, TheQuantiserGivesTheHostRulesCodesAndScales) {
  if (!has_fp8_gpu()) GTEST_SKIP() << "no GPU with FP8 (compute capability 8.9+) visible";
  const int64_t m = 6, k = 1040;  // k a multiple of 8: the 16-byte path; the odd base below takes the scalar one
  std::mt19937 rng(3);
  std::normal_distribution<float> normal;
  std::vector<__nv_bfloat16> x(static_cast<size_t>(m * k));
  std::vector<float> xf(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    float v = normal(rng);
    if (i / k == 1) v = 0.0f;                 // an all-zero row: scale 1
    if (i / k == 2) v *= 1e-6f;                  // tiny values: the scale brings them up, as large ones down
    if (i / k == 3 && i % 7 == 0) v *= 300.0f;   // outliers: the other values land on subnormal codes
    if (i / k == 4) v = std::ldexp(1.0f, -20) * static_cast<float>(i % 5);  // few distinct values: ties
    x[i] = __float2bfloat16(v);
    xf[i] = __bfloat162float(x[i]);
  }
  DeviceArray<__nv_bfloat16> dx(x);
  DeviceArray<uint8_t> dq(std::vector<uint8_t>(x.size() + 8, 0xff));
  DeviceArray<float> ds(std::vector<float>(static_cast<size_t>(m), NAN));
  for (int64_t offset : {int64_t{0}, int64_t{1}}) {  // a base one element off: the scalar path
    const int64_t rows = offset ? m - 1 : m;
    ASSERT_TRUE(quantize_rows_e4m3(dx.ptr + offset, rows, k, dq.ptr, ds.ptr, nullptr).ok());
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto codes = dq.download(static_cast<size_t>(rows * k));
    const auto scales = ds.download(static_cast<size_t>(rows));
    std::vector<uint8_t> want(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      const float s = fp8::quantize_row(xf.data() + offset + r * k, k, want.data());
      EXPECT_EQ(scales[static_cast<size_t>(r)], s) << "row " << r << " offset " << offset;
      EXPECT_EQ(0, std::memcmp(codes.data() + r * k, want.data(), want.size())) << "row " << r << " offset " << offset;
    }
  }
}

TEST(Fp8Cuda, TheGemmGivesTheQuantisedProductWithEitherScalePath) {
  if (!has_fp8_gpu()) GTEST_SKIP() << "no GPU with FP8 (compute capability 8.9+) visible";
  const char* where = std::getenv("EMBEDSERVE_CUBLAS_PATH");
  auto api = open_cublas(where ? where : "");
  ASSERT_TRUE(api.ok()) << api.status().to_string();
  const int64_t m = 37, n = 96, k = 272;
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> code(0, 0xfd);
  std::uniform_real_distribution<float> scale(0.001f, 0.1f);
  std::vector<uint8_t> xq(static_cast<size_t>(m * k)), wq(static_cast<size_t>(n * k));
  for (auto* codes : {&xq, &wq})
    for (auto& c : *codes) {
      c = static_cast<uint8_t>(code(rng));
      if (fp8::is_nan(c)) c = 0;  // 0x7f: e4m3fn's NaN (0xff is out of the range drawn)
    }
  std::vector<float> xs(static_cast<size_t>(m)), ws(static_cast<size_t>(n));
  for (auto& s : xs) s = scale(rng);
  for (auto& s : ws) s = scale(rng);
  std::vector<double> want(static_cast<size_t>(m * n)), magnitude(want.size());  // Σ terms, Σ |terms|
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0, abs_acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double t = double(fp8::to_float(xq[i * k + p])) * fp8::to_float(wq[j * k + p]);
        acc += t;
        abs_acc += std::abs(t);
      }
      const double s = double(xs[static_cast<size_t>(i)]) * ws[static_cast<size_t>(j)];
      want[static_cast<size_t>(i * n + j)] = acc * s;
      magnitude[static_cast<size_t>(i * n + j)] = abs_acc * s;
    }
  DeviceArray<uint8_t> dxq(xq), dwq(wq);
  DeviceArray<float> dxs(xs), dws(ws);
  for (bool outer : {true, false}) {
    auto gemm = Fp8Gemm::create(*api, outer);
    ASSERT_TRUE(gemm.ok()) << gemm.status().to_string();
    if (outer && !(*gemm)->outer_vector_scales()) std::printf("this cuBLASLt has no outer-vector FP8 scales\n");
    DeviceArray<__nv_bfloat16> dy(std::vector<__nv_bfloat16>(static_cast<size_t>(m * n), __float2bfloat16(NAN)));
    const Status st = (*gemm)->run(nullptr, dxq.ptr, dxs.ptr, dwq.ptr, dws.ptr, dy.ptr, m, n, k);
    ASSERT_TRUE(st.ok()) << st.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    const auto y = dy.download(static_cast<size_t>(m * n));
    // Exact products; sums that Hopper's FP8 tensor cores keep in ~14 bits between cuBLASLt's promotions to f32
    // (so up to ~2^-12 of Σ|terms| over these k), one bf16 rounding with outer vectors and two without (2^-8 each).
    double worst = 0;
    for (size_t e = 0; e < y.size(); ++e) {
      const double got = __bfloat162float(y[e]);
      const double bound = 2 * std::ldexp(1.0, -8) * std::abs(want[e]) + std::ldexp(1.0, -12) * magnitude[e] + 1e-30;
      ASSERT_FALSE(std::isnan(got)) << "element " << e << " not written";
      worst = std::max(worst, std::abs(got - want[e]) / bound);
    }
    EXPECT_LE(worst, 1.0) << (outer ? "outer-vector scales" : "scaling kernel") << ": worst error / bound";
    std::printf("%s: worst error %.3f of its bound\n", outer ? "outer-vector scales" : "scaling kernel", worst);
  }
}

}  // namespace
}  // namespace embedserve::cuda
