// Two plain GEMM kernels of our own, to see whether a row gets cuBLAS's bits from them (bench/ops/gemm_algo_bench).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace embedserve::bench {

// Row-major y [m, n] = x [m, k] · w [n, k]ᵀ, f32 sums over k in order, 16 at a time, rounded once to bf16 — the
// order every split-K-free cuBLAS kernel was seen to keep. Slow on purpose: one product after another, operands
// from global memory; the question is their bits, not their speed.
// mma.sync.m16n8k16, one warp per 16 × 8 tile of y; n a multiple of 16, k of 16.
cudaError_t probe_gemm_mma_sync(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int m, int n, int k,
                                cudaStream_t stream);
// wgmma.m64n64k16 (sm_90a), one warpgroup per 64 × 64 tile of y, x through shared memory with the 128-byte
// swizzle; n a multiple of 64, k of 64. Returns cudaErrorNotSupported where the build or the device lacks sm_90a.
cudaError_t probe_gemm_wgmma(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int m, int n, int k,
                             cudaStream_t stream);

// Cycles per step of `chains` interleaved chains of dependent mma.sync.m16n8k16 products, `warps` warps (≤ 32) of
// one block each running them: the floor under any kernel that keeps cuBLAS's order of k.
double probe_mma_chain_cycles(int steps, int chains, int warps);

}  // namespace embedserve::bench
