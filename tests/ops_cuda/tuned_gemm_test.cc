// TunedGemm: bulk batches' buckets, the largest projections' query buckets and skinny_gemm's are tuned (on the
// host); on a GPU (skipped without one), whichever kernel a bucket chooses, every row has the bits cublasGemmEx gives
// it, alone and inside a larger batch, and a call being recorded into a graph chooses nothing. skinny_gemm itself:
// the shapes it takes, and every row's bits in each of its block sizes.
#include "ops/cuda/tuned_gemm.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_device.h"
#include "ops/cuda/linear_cuda.h"
#include "ops/cuda/skinny_gemm_cuda.h"

namespace embedserve::cuda {
namespace {

bool has_gpu() {
  auto devices = list_devices();
  return devices.ok() && !devices->empty();
}

std::vector<__nv_bfloat16> random_bf16(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<__nv_bfloat16> out(n);
  for (auto& x : out) x = __float2bfloat16(u(rng));
  return out;
}

struct Device {
  void* ptr = nullptr;
  explicit Device(size_t bytes) { EXPECT_EQ(cudaMalloc(&ptr, bytes), cudaSuccess); }
  ~Device() { cudaFree(ptr); }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr); }
};

// A cuBLAS handle as a context makes one: on its stream, without a workspace.
struct Blas {
  CublasApi api;
  cudaStream_t stream = nullptr;
  cublasHandle_t handle = nullptr;
  std::unique_ptr<TunedGemm> tuned;
  bool open() {
    const char* where = std::getenv("EMBEDSERVE_CUBLAS_PATH");
    auto a = open_cublas(where ? where : "");
    EXPECT_TRUE(a.ok()) << a.status().to_string();
    if (!a.ok()) return false;
    api = *a;
    EXPECT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
    EXPECT_EQ(api.create(&handle), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(api.set_stream(handle, stream), CUBLAS_STATUS_SUCCESS);
    EXPECT_EQ(api.set_workspace(handle, nullptr, 0), CUBLAS_STATUS_SUCCESS);
    auto t = TunedGemm::create(api, handle);
    EXPECT_TRUE(t.ok()) << t.status().to_string();
    if (!t.ok()) return false;
    tuned = std::move(*t);
    return true;
  }
  // y = x·wᵀ by cublasGemmEx: the engine's own call (ops/cuda/linear_cuda.h).
  void gemm_ex(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int m, int n, int k) const {
    const Status st = linear(api, handle, x, w, y, m, n, k);
    ASSERT_TRUE(st.ok()) << st.to_string();
  }
  std::vector<uint16_t> download(const void* y, size_t n) const {
    std::vector<uint16_t> out(n);
    EXPECT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(out.data(), y, n * 2, cudaMemcpyDeviceToHost), cudaSuccess);
    return out;
  }
  void poison(void* y, size_t n) const { EXPECT_EQ(cudaMemsetAsync(y, 0xff, n * 2, stream), cudaSuccess); }  // NaNs
  ~Blas() {
    tuned.reset();
    if (handle) api.destroy(handle);
    if (stream) cudaStreamDestroy(stream);
  }
};

// Random x [rows, k] and w [n, k] on the GPU, room for y, and y = x·wᵀ over all the rows by cublasGemmEx: on the
// GPU (y_ref) and on the host (ref).
struct Operands {
  Device x, w, y, y_ref;
  std::vector<uint16_t> ref;
  Operands(const Blas& b, int rows, int n, int k, uint32_t x_seed, uint32_t w_seed)
      : x(size_t(rows) * k * 2), w(size_t(n) * k * 2), y(size_t(rows) * n * 2), y_ref(size_t(rows) * n * 2) {
    const auto hx = random_bf16(size_t(rows) * k, x_seed), hw = random_bf16(size_t(n) * k, w_seed);
    EXPECT_EQ(cudaMemcpy(x.ptr, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(w.ptr, hw.data(), hw.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
    b.gemm_ex(x.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), y_ref.as<__nv_bfloat16>(), rows, n, k);
    ref = b.download(y_ref.ptr, size_t(rows) * n);
  }
};

TEST(TunedGemm, RowsAreBucketedByPowersOfTwoFromSixteen) {
  EXPECT_EQ(TunedGemm::bucket(1), 16);
  EXPECT_EQ(TunedGemm::bucket(16), 16);
  EXPECT_EQ(TunedGemm::bucket(17), 32);
  EXPECT_EQ(TunedGemm::bucket(1000), 1024);
  EXPECT_EQ(TunedGemm::bucket(16384), 16384);
  EXPECT_EQ(TunedGemm::bucket(16385), 32768);
}

// Small batches (their first call would pay for the choosing) and calls past the batch budget run cublasGemmEx;
// bulk batches are tuned, a query's buckets (up to 64 rows) of a projection of at least 64 MiB, and the buckets of
// up to 32 rows of any projection skinny_gemm takes.
TEST(TunedGemm, BulkBatchesQueriesOfTheLargestProjectionsAndWhatSkinnyGemmTakesAreTuned) {
  const int64_t n = 1024, k = 2048;  // 4 MiB of bf16: the 0.6B's o_proj
  EXPECT_TRUE(TunedGemm::tuned(1, n, k));
  EXPECT_TRUE(TunedGemm::tuned(32, n, k));
  EXPECT_FALSE(TunedGemm::tuned(33, n, k));
  EXPECT_FALSE(TunedGemm::tuned(16, n, 2000)) << "k not a multiple of 256: not skinny_gemm's";
  EXPECT_FALSE(TunedGemm::tuned(1024, n, k));
  EXPECT_TRUE(TunedGemm::tuned(1025, n, k));
  EXPECT_TRUE(TunedGemm::tuned(16384, n, k));
  EXPECT_FALSE(TunedGemm::tuned(16385, n, k));
  EXPECT_FALSE(TunedGemm::tuned(32000, n, k));
  const int64_t big_n = 19456, big_k = 2560;  // 95 MiB: the 4B's gate|up
  EXPECT_TRUE(TunedGemm::tuned(1, big_n, big_k));
  EXPECT_TRUE(TunedGemm::tuned(64, big_n, big_k));
  EXPECT_FALSE(TunedGemm::tuned(65, big_n, big_k));
  EXPECT_FALSE(TunedGemm::tuned(1024, big_n, big_k));
  EXPECT_TRUE(TunedGemm::tuned(2048, big_n, big_k));
  EXPECT_FALSE(TunedGemm::tuned(64, 2560, 9728)) << "47.5 MiB: the 4B's down_proj";
  EXPECT_TRUE(TunedGemm::tuned(16, 2560, 9728)) << "skinny_gemm takes it";
}

TEST(TunedGemm, TheFastestInTotalOverAllRoundsIsChosen) {
  const int rounds = TunedGemm::kRounds;
  ASSERT_EQ(rounds % 2, 0) << "forward and backward rounds come in pairs, so a linear drift cancels";
  // Clocks that slow by 1 per run: candidate 0 runs first in forward rounds, last in backward ones, so a drift
  // alone gives every candidate the same total and the earliest (cublasGemmEx) keeps a tie.
  const int count = 3;
  std::vector<std::vector<float>> times(count);
  int run = 0;
  for (int r = 0; r < rounds; ++r)
    for (int i = 0; i < count; ++i) times[size_t(r % 2 == 0 ? i : count - 1 - i)].push_back(10.0f + float(run++));
  EXPECT_EQ(TunedGemm::fastest(times, rounds), 0);
  // A kernel 0.5 faster a run wins under the same drift, though it never has the coolest run.
  for (float& t : times[2]) t -= 0.5f;
  EXPECT_EQ(TunedGemm::fastest(times, rounds), 2);
  // One that was refused in a round (fewer runs) is never chosen, however fast.
  times[1] = std::vector<float>(size_t(rounds - 1), 0.1f);
  EXPECT_EQ(TunedGemm::fastest(times, rounds), 2);
  EXPECT_EQ(TunedGemm::fastest(std::vector<std::vector<float>>(2), rounds), -1) << "none ran";
}

TEST(TunedGemm, EveryBucketGivesEachRowTheBitsCublasGemmExGivesItInTheWholeBatch) {
  if (!has_gpu()) GTEST_SKIP() << "no GPU visible";
  Blas b;
  ASSERT_TRUE(b.open());
  // The 0.6B's down projection and the 4B's gate|up: shapes where cuBLASLt offers faster kernels than cublasGemmEx
  // picks (bench/ops/gemm_algo_bench); the latter's query buckets are chosen by recorded graphs.
  for (auto [n, k] : {std::pair{1024, 3072}, {19456, 2560}}) {
    SCOPED_TRACE(::testing::Message() << "w [" << n << ", " << k << "]");
    const int whole = 5000;
    const Operands o(b, whole, n, k, 11 + n, 13 + k);
    const Device &x = o.x, &w = o.w, &y = o.y;
    const std::vector<uint16_t>& ref = o.ref;
    const size_t choices_before = b.tuned->choices();
    std::set<int64_t> buckets;
    // Each m twice: the first call of a bucket chooses (timing every candidate on these operands), the second runs
    // the choice.
    for (int m : {1, 16, 17, 64, 300, 1000, 1025, 2049, whole}) {
      if (TunedGemm::tuned(m, n, k)) buckets.insert(TunedGemm::bucket(m));
      for (int call = 0; call < 2; ++call) {
        b.poison(y.ptr, size_t(m) * n);
        const Status st = b.tuned->run(b.stream, x.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), y.as<__nv_bfloat16>(),
                                       m, n, k);
        ASSERT_TRUE(st.ok()) << st.to_string();
        const auto got = b.download(y.ptr, size_t(m) * n);
        EXPECT_EQ(std::memcmp(got.data(), ref.data(), got.size() * 2), 0) << m << " rows, call " << call;
      }
    }
    EXPECT_EQ(b.tuned->choices() - choices_before, buckets.size());
  }
  std::printf("%zu choices, %zu of them cuBLASLt kernels other than cublasGemmEx's, %zu skinny_gemm\n",
              b.tuned->choices(), b.tuned->lt_choices(), b.tuned->skinny_choices());
}

TEST(TunedGemm, ACallBeingRecordedRunsCublasGemmExAndChoosesNothing) {
  if (!has_gpu()) GTEST_SKIP() << "no GPU visible";
  Blas b;
  ASSERT_TRUE(b.open());
  const int m = 3000, n = 1024, k = 2048;  // a tuned bucket: only the recording keeps it from choosing
  ASSERT_TRUE(TunedGemm::tuned(m, n, k));
  const auto hx = random_bf16(size_t(m) * k, 3), hw = random_bf16(size_t(n) * k, 4);
  Device x(hx.size() * 2), w(hw.size() * 2), y(size_t(m) * n * 2), y_ref(size_t(m) * n * 2);
  ASSERT_EQ(cudaMemcpy(x.ptr, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(w.ptr, hw.data(), hw.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  b.gemm_ex(x.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), y_ref.as<__nv_bfloat16>(), m, n, k);
  b.poison(y.ptr, size_t(m) * n);
  ASSERT_EQ(cudaStreamSynchronize(b.stream), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(b.stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
  const Status st =
      b.tuned->run(b.stream, x.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), y.as<__nv_bfloat16>(), m, n, k);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(b.stream, &graph), cudaSuccess);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_EQ(b.tuned->choices(), 0u);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, b.stream), cudaSuccess);
  const auto got = b.download(y.ptr, size_t(m) * n), ref = b.download(y_ref.ptr, size_t(m) * n);
  EXPECT_EQ(std::memcmp(got.data(), ref.data(), got.size() * 2), 0);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
}

TEST(SkinnyGemm, TakesOnlyTheShapesItTiles) {
  EXPECT_TRUE(skinny_gemm_fits(1, 1040, 2048, 1));
  EXPECT_TRUE(skinny_gemm_fits(32, 1024, 256, 4));
  EXPECT_FALSE(skinny_gemm_fits(0, 1024, 2048, 1)) << "no rows";
  EXPECT_FALSE(skinny_gemm_fits(33, 1024, 2048, 1)) << "more rows than it holds";
  EXPECT_FALSE(skinny_gemm_fits(16, 1040, 2048, 4)) << "n not a multiple of its block's 64 rows of w";
  EXPECT_FALSE(skinny_gemm_fits(16, 1000, 2048, 1)) << "n not a multiple of 16";
  EXPECT_FALSE(skinny_gemm_fits(16, 1024, 2000, 1)) << "k not a multiple of a stage's 256";
  EXPECT_FALSE(skinny_gemm_fits(16, 1024, 2048, 3)) << "blocks of 1, 2 or 4 warps only";
  EXPECT_EQ(skinny_gemm(nullptr, nullptr, nullptr, nullptr, 16, 1024, 2000, 1), cudaErrorInvalidValue);
}

// In each block size, every row gets the bits cublasGemmEx gives it in a 300-row batch, and no row past m is written
// (y NaN-poisoned): the 0.6B's k|v|q and o, a tensor-parallel half of its down projection, and the 4B's down.
TEST(SkinnyGemm, GivesEachRowCublasGemmExsBitsAndWritesNoRowPastItsRows) {
  if (!has_gpu()) GTEST_SKIP() << "no GPU visible";
  Blas b;
  ASSERT_TRUE(b.open());
  const int whole = 300;
  for (auto [n, k] : {std::pair{4096, 1024}, {1024, 2048}, {1024, 1536}, {2560, 9728}}) {
    const Operands o(b, whole, n, k, 5 + n, 7 + k);
    const Device &x = o.x, &w = o.w, &y = o.y;
    const std::vector<uint16_t>& ref = o.ref;
    for (int warps : {1, 2, 4})
      for (int m : {1, 5, 16, 17, 32}) {
        SCOPED_TRACE(::testing::Message() << "w [" << n << ", " << k << "], " << m << " rows, " << warps << " warps");
        ASSERT_TRUE(skinny_gemm_fits(m, n, k, warps));
        b.poison(y.ptr, size_t(m + 8) * n);
        ASSERT_EQ(skinny_gemm(b.stream, x.as<__nv_bfloat16>(), w.as<__nv_bfloat16>(), y.as<__nv_bfloat16>(), m, n, k,
                              warps),
                  cudaSuccess);
        const auto got = b.download(y.ptr, size_t(m + 8) * n);
        EXPECT_EQ(std::memcmp(got.data(), ref.data(), size_t(m) * n * 2), 0);
        EXPECT_TRUE(std::all_of(got.begin() + ptrdiff_t(m) * n, got.end(), [](uint16_t v) { return v == 0xffff; }))
            << "a row past m was written";
      }
  }
}

}  // namespace
}  // namespace embedserve::cuda
