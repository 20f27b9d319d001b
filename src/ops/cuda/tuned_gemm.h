// TunedGemm: bf16 GEMMs through the fastest of cuBLAS's split-K-free kernels, timed once per (shape, row bucket).
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "core/status.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/skinny_gemm_cuda.h"

namespace embedserve::cuda {

// cublasGemmEx without a workspace picks a kernel by its heuristic, which on an H200 is up to 1.13× slower than the
// best of the other kernels cuBLASLt offers for the same shape at bulk sizes (bench/ops/gemm_algo_bench: the 0.6B's
// and 4B's projections at 1,024 to 16,384 rows; up to 1.45× at fewer rows, where this class does not tune). Every
// kernel that needs no workspace runs without split-K, and each gives every row the same bits (gemm_algo_bench
// compares them all against cublasGemmEx on a 16,384-row batch: equal in every case), so choosing among them by
// speed keeps a row's bits independent of its batch and of the choice.
//
// The choice is made per (n, k, bucket of m) — m rounded up to a power of two, at least 16 — on the first call of
// that bucket that is not being recorded into a CUDA graph: cublasGemmEx and each such kernel run on that call's own
// operands (each writes y, with the same bits), once to load, then in kRounds rounds of one run each, timed by
// events, and the fastest in total is kept. A call being recorded before its bucket has a choice runs cublasGemmEx.
// One TunedGemm per context, used by its thread.
//
// A query's buckets of up to kSkinnyMaxRows rows (16 and 32) also time skinny_gemm (ops/cuda/skinny_gemm_cuda.h:
// the same bits, each warp on 16 of w's rows, so that a projection of few rows of w spreads its read over more
// multiprocessors than cuBLAS's 64-row tiles) in its three block sizes, for every projection it takes; where a
// projection is smaller than kMinQueryWeightBytes, only against cublasGemmEx (cuBLASLt's other kernels were never
// faster there, and each candidate costs start-up time).
//
// Why rounds: the card's clocks drift during the choosing (a first batch finds the card cool and brings it to its
// power cap within milliseconds, where it runs ~25 % slower), and when each candidate ran its timed runs back to
// back, the ones timed first looked faster: two processes on an H200 chose kernels of one 0.6B projection 10 % apart
// (ncu, 2026-12-01). Rounds alternate the candidates' order, forward then backward, so a drift that is linear over
// the choosing adds the same to every candidate's total.
//
// Bulk batches are tuned: buckets of kMinTunedRows to kMaxTunedRows rows, where the gain is and where a call
// already takes long enough to carry the choosing once. So are a query's buckets (up to kMaxQueryRows rows) of the
// largest projections (at least kMinQueryWeightBytes of w: the 4B's and 8B's MLP), where the kernel's tiling of n
// decides how evenly the multiprocessors share the read of w: on an H200 the 4B's gate|up at 16–64 rows takes 26.6–27.0
// µs with the best of cuBLASLt's kernels against 30.0–31.5 with cublasGemmEx's (1.13–1.17×; every smaller projection
// of the 0.6B and 4B within 1.06×: bench/ops/gemm_algo_bench, 2026-12-01). A query's call is too short for events
// around one launch to time the kernel rather than the host's ~11 µs launch, so there each candidate runs as a
// recorded graph of kGraphCalls launches, each after a kernel standing in for the norm or SwiGLU it follows in the
// engine, and a round times one replay (the 4B's start-up: +0.09 s).
//
// The choosing is not free. The first launch of each kernel loads it, and every candidate runs 1 + kRounds times
// (~45 extra runs of each projection at its first call). When
// every bucket was tuned, on the 4B, 2026-11-30: a first batch of eight 16-token queries was answered 65 ms after the
// call ahead of it, where such a batch takes a few ms, and a whole 32,000-token input took 1.41 s against 1.11 s
// before tuning existed (1.14 s once only bulk batches were: docs/PERFORMANCE.md, 2026-12-01). Smaller and larger
// calls run cublasGemmEx.
class TunedGemm {
 public:
  // Needs cuBLASLt beside `api`'s cuBLAS; `blas` (a handle without a workspace) runs cublasGemmEx.
  static StatusOr<std::unique_ptr<TunedGemm>> create(const CublasApi& api, cublasHandle_t blas);
  ~TunedGemm();
  TunedGemm(const TunedGemm&) = delete;
  TunedGemm& operator=(const TunedGemm&) = delete;

  // Row-major y [m, n] = x [m, k] · w [n, k]ᵀ, f32 accumulation, bf16 out, on `stream` (blas's stream).
  Status run(cudaStream_t stream, const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int64_t m,
             int64_t n, int64_t k);

  // The index of the fastest candidate from its timed runs, in the order tune() takes them: times[c][r] is
  // candidate c's run in round r (the rounds of one candidate in one order, whichever order it ran in); the smallest
  // total wins, an earlier candidate on a tie, one with fewer runs (refused at some point) never; -1 if none ran.
  static int fastest(const std::vector<std::vector<float>>& times, int rounds);
  static constexpr int kRounds = 4;  // even: forward and backward rounds in pairs

  // How many (n, k, bucket) choices have been made, and how many of them are cuBLASLt kernels other than
  // cublasGemmEx's own, or skinny_gemm (tests; the engine's start-up log).
  size_t choices() const { return choices_.size(); }
  size_t lt_choices() const;
  size_t skinny_choices() const;

  // The bucket a call of m rows is tuned in, and whether calls of m rows with w [n, k] are tuned at all.
  static int64_t bucket(int64_t m);
  static constexpr int64_t kMinTunedRows = 2048, kMaxTunedRows = 16384;  // bulk buckets, inclusive
  static constexpr int64_t kMaxQueryRows = 64;                            // query buckets: 16, 32, 64
  static constexpr int64_t kMinQueryWeightBytes = int64_t{64} << 20;
  static constexpr int kGraphCalls = 8;  // launches a query bucket's candidate runs as, per timed replay
  static bool tuned(int64_t m, int64_t n, int64_t k) {
    const int64_t b = bucket(m);
    if (b >= kMinTunedRows && b <= kMaxTunedRows) return true;
    return b <= kMaxQueryRows && (large(n, k) || skinny_gemm_fits(b, n, k, 1));
  }

 private:
  static bool large(int64_t n, int64_t k) { return n * k * int64_t{sizeof(__nv_bfloat16)} >= kMinQueryWeightBytes; }
  struct Choice {
    bool gemm_ex = true;
    cublasLtMatmulAlgo_t algo{};
    int skinny_warps = 0;  // > 0: skinny_gemm in blocks of this many warps (gemm_ex false)
  };
  struct Layouts {
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  };
  TunedGemm(const CublasApi& api, const CublasLtApi& lt, cublasHandle_t blas) : api_(api), lt_(lt), blas_(blas) {}
  Status gemm_ex(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int64_t m, int64_t n, int64_t k);
  StatusOr<const Layouts*> layouts(int64_t m, int64_t n, int64_t k);
  void destroy(const Layouts& l);
  cublasStatus_t lt_matmul(cudaStream_t stream, const cublasLtMatmulAlgo_t& algo, const __nv_bfloat16* x,
                           const __nv_bfloat16* w, __nv_bfloat16* y, const Layouts& l);
  // cuBLASLt's split-K-free kernels for these layouts, after `candidates`.
  Status add_lt_candidates(const Layouts& l, std::vector<Choice>& candidates);
  Status run_choice(cudaStream_t stream, const Choice& c, const __nv_bfloat16* x, const __nv_bfloat16* w,
                    __nv_bfloat16* y, int64_t m, int64_t n, int64_t k, const Layouts& l);
  StatusOr<Choice> tune(cudaStream_t stream, const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y,
                        int64_t m, int64_t n, int64_t k, const Layouts& l);

  CublasApi api_;
  CublasLtApi lt_;
  cublasHandle_t blas_ = nullptr;
  cublasLtHandle_t handle_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  std::vector<cudaEvent_t> marks_;  // the choosing's timestamps: one before each timed run, one after the last
  std::map<std::tuple<int64_t, int64_t, int64_t>, Choice> choices_;   // by (n, k, bucket)
  std::map<std::tuple<int64_t, int64_t, int64_t>, Layouts> layouts_;  // by (m, n, k); cleared past kMaxLayouts
};

}  // namespace embedserve::cuda
