// The CPU backend's kernels, one file each, behind the op API (ops/<op>.cc dispatches here); raw pointers and
// host index spans, f32 throughout.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/types.h"
#include "ops/attention.h"

namespace embedserve::ops::cpu {

// Below this many floats of work a parallel region costs more than it saves: waking the team and its
// closing barrier take microseconds on an idle machine, and when another process holds a core (the
// server's network and tokenizer threads, a neighbour's build) the barrier waits out a whole time slice
// for the descheduled thread — measured here as 0.36 s per 64-token batch of a tiny model on 2 threads
// against 0.001 s on one. 32k floats is ~10 µs of one core's work.
inline constexpr int64_t kMinParallelWork = int64_t{1} << 15;

// embedding.cc
void embedding(const void* table, DType dtype, int64_t dim, std::span<const int32_t> ids, float* out);
// rms_norm.cc
void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, int64_t stride, float eps);
// linear.cc (OpenBLAS sgemm)
void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
            std::span<const int32_t> row_groups);
// linear_bf16.cc: y f32 [m, n] = x f32 [m, k] · w bf16 [n, k]ᵀ (bf16 as raw bits). Every kernel computes each
// element of y as one dot product in an order that depends on k alone: a row's bits never depend on m or on
// its place in the batch, so no per-sequence split is needed.
enum class Bf16Kernel {
  kAvx512Bf16,  // vdpbf16ps: x rounded to bf16 (nearest even), products exact, sums in f32
  kAvx512,      // x f32, weights widened exactly, 16-lane FMAs
  kAvx2,        // the same with 8 lanes (AVX2 + FMA)
  kPortable,    // plain C++, any CPU
};
bool bf16_kernel_supported(Bf16Kernel kernel);
// The fastest kernel this CPU runs (CPUID, once).
Bf16Kernel best_bf16_kernel();
const char* bf16_kernel_name(Bf16Kernel kernel);
void linear_bf16(Bf16Kernel kernel, const float* x, const uint16_t* w, float* y, int64_t m, int64_t n, int64_t k);
// linear_fp8.cc: the FP8 GEMM as the GPU computes it. quantize_rows_e4m3: each row of x f32 [m, k] to e4m3 codes
// xq [m, k] with its scale x_scales [m] (core/float8.h's rule). linear_fp8: y f32 [m, n] = xq · wᵀ (w e4m3 [n, k]),
// exact products, f32 sums in an order that depends on k alone, times x_scales[i] · w_scales[j].
void quantize_rows_e4m3(const float* x, int64_t m, int64_t k, uint8_t* xq, float* x_scales);
void linear_fp8(const uint8_t* xq, const float* x_scales, const uint8_t* w, const float* w_scales, float* y, int64_t m,
                int64_t n, int64_t k);
// rope.cc
void rope_tables(std::span<const int32_t> positions, std::span<const float> inv_freq, float* cos, float* sin);
void apply_rope(float* x, const float* cos, const float* sin, int64_t n, int heads, int head_dim, int64_t stride);
// attention.cc
// q rows q_stride floats apart, k and v rows kv_stride apart; out dense [n_q, heads * head_dim].
void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& shape,
               int64_t q_stride, int64_t kv_stride,
               std::span<const int32_t> q_offsets, std::span<const int32_t> q_positions,
               std::span<const int32_t> kv_offsets);
// elementwise.cc
// out [n, d] = silu(gate) * up; gate and up rows `in_stride` apart (the halves of one fused gate|up row).
void silu_mul(const float* gate, const float* up, int64_t in_stride, float* out, int64_t n, int64_t d);
void add(float* x, const float* y, int64_t n);
void gather_rows(const float* x, int64_t dim, std::span<const int32_t> rows, float* out);
// pool.cc: out f32 [n_seqs, dim] = the mean of each sequence's rows (summed in double), L2-normalised if asked.
void pool(const float* hidden, int64_t dim, std::span<const int32_t> offsets, bool normalize, float* out);
// softmax.cc: in place over x f32 [n]; exp is a vectorisable polynomial accurate to ~2 ulp.
void softmax(float* x, int64_t n);

}  // namespace embedserve::ops::cpu

namespace embedserve::ops::cpu {

// blas.cc: process-wide OpenBLAS/OpenMP set-up. At start-up (a constructor, before any thread), where this
// OpenBLAS (0.3.21) picked kernels older than the CPU can run (a VM hiding the CPU model gets SSE3 "Prescott"
// ones), selects SkylakeX (AVX-512) or Haswell (AVX2) kernels by the CPU's instruction sets: 2-5x the GEMM
// speed, and with SkylakeX GEMMs whose rows do not depend on the batch. OPENBLAS_CORETYPE in the
// environment is honoured as given. configure_blas sets the thread count of both (0: every core).
void configure_blas(int threads);
// OpenMP's thread count (omp_set_num_threads) belongs to the thread that set it: a thread that runs ops without
// having set it (the scheduler's batcher, a tensor-parallel rank) would start teams of every core whatever
// --threads said. ScopedDevice calls this on the thread it runs on.
void use_configured_threads();
// The team a parallel region started on the calling thread would have now (omp_get_max_threads), for tests.
int calling_thread_team_size();
int blas_threads();
const char* blas_core_name();
// Whether sgemm of an [M, k] × [k, n] product gives each row of C bitwise the same value whatever M and the
// row's place: true for the AVX-512 (SkylakeX) blocked kernels, i.e. when n·k > 100³ keeps them off the
// small-matrix path (checked for M = 1..1600 at several offsets; tests/ops/linear_test.cc checks it on
// every machine); false for the others, e.g. Haswell's, which round a row differently depending on its
// place in the kernel's tile and on M (up to ~2e-6 relative).
bool blas_rows_independent(int64_t n, int64_t k);

}  // namespace embedserve::ops::cpu
