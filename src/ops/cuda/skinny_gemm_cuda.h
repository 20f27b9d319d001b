// skinny_gemm: y = x·wᵀ for a query's few rows (at most 32) on mma.sync, k summed in cuBLAS's order (its bits).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace embedserve::cuda {

// At a query's rows a projection only reads w, and cuBLAS's Hopper kernels tile w's rows 64 at a time, so the 4B's
// o and down projections (2,560 rows) run on 40 multiprocessors and the 0.6B's (1,024) on 16, each walking all of
// k: at 16 rows they read w at 0.9–3.1 TB/s where the card gives ~4.3 (bench/ops/gemm_algo_bench, 2026-12-02:
// none of the 1,727–1,904 split-K-free configurations cuBLASLt accepts for them beats cublasGemmEx's). Here each
// warp holds 16 of w's rows (2,560 rows: 160 warps), so more multiprocessors share the read.
//
// Its bits are cuBLAS's: each warp sums k in order, 16 at a time, one mma.sync.m16n8k16 after another from zero
// (w's rows as A, x's rows as B), rounded once to bf16 — the order every split-K-free cuBLAS kernel keeps, so a
// row gets the bits it gets in any batch (tests/ops_cuda/tuned_gemm_test.cc compares every row with
// cublasGemmEx's). Splitting k would be faster still and would change them. Such a chain advances at ~25 cycles a
// product on an H200 (gemm_algo_bench's probe): under what the read of w takes.
//
// A block's `warps` warps (1, 2 or 4: which is fastest depends on n and k, so TunedGemm times them) share x's rows.
// One thread copies w's and x's rows by the tensor memory accelerator, 64 columns × the block's rows a box, into a
// ring of 256-column stages; copying with cp.async instead, 16 bytes a thread, left the warps issue-bound at
// 0.2–1.0× cuBLAS (docs/PERFORMANCE.md, 2026-12-02).
constexpr int kSkinnyMaxRows = 32;

// Whether skinny_gemm takes m rows of y = x·wᵀ with w [n, k] in blocks of `warps` warps.
bool skinny_gemm_fits(int64_t m, int64_t n, int64_t k, int warps);

// Row-major y [m, n] = x [m, k] · w [n, k]ᵀ, f32 sums, bf16 out, on `stream`; cudaErrorInvalidValue where
// skinny_gemm_fits does not hold. Rows of x past m are never read.
cudaError_t skinny_gemm(cudaStream_t stream, const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y,
                        int64_t m, int64_t n, int64_t k, int warps);

// A kernel of about a query layer's norm or SwiGLU length (a few µs, first letting its dependents start), for
// timing GEMM candidates as the engine runs them: each after such a kernel, where skinny_gemm (a programmatic
// dependent) streams its first stages of w while it runs and cuBLAS's kernels start once it has finished.
cudaError_t launch_stand_in(cudaStream_t stream);

}  // namespace embedserve::cuda
