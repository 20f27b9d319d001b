// linear: nn.Linear without bias, y = x · wᵀ, one GEMM over every row of a padding-free batch.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// y [m, n] = x [m, k] · w [n, k]ᵀ. `row_groups` (host offsets [g+1]) splits the m rows into sequences: a
// backend whose GEMM rounds a row differently depending on m or the row's place (OpenBLAS's non-AVX-512
// kernels, cuBLAS's f32 SGEMM) computes each group alone, so a sequence's vector never depends on the rest of its
// batch. CUDA's bf16 GEMM needs no split: without a workspace (no split-K) it gives each row the same bits at any m;
// nor do the CPU's bf16-weight kernels (x, y f32, w bf16 on a context whose weight_dtype() is bf16), which compute
// each element in an order that depends on k alone.
// On a bf16 context y may be f32: the product unrounded (a tensor-parallel rank's partial, for ops::all_reduce).
//
// FP8 weights (w kF8E4M3 with w.scales: a context whose weight_dtype() is kF8E4M3): each row of x is quantised to
// e4m3 with its own scale (max|x| / 448) into `scratch`, then y = (xq · wqᵀ) · x_scale[i] · w.scales[j], products
// exact and sums in f32 (cuBLASLt's FP8 GEMM on CUDA, bf16 out; the same arithmetic on the CPU). A row's codes
// and scale depend on the row alone, so batch invariance holds as for bf16. `scratch` must hold
// linear_scratch_bytes(ctx, x.rows, x.cols) bytes; other weights ignore it. `x_quantized`: the op that produced x
// already wrote its quantisation into `scratch` (add_rms_norm's and swiglu's `quantized` argument), so linear
// skips its own pass over x — the caller vouches that scratch holds x's rows, as quantize_for_linear writes them.
Status linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor& y, const Index& row_groups,
              const Tensor& scratch = {}, bool x_quantized = false);

// x's rows quantised into `scratch` as linear quantises its input on an fp8 context: codes e4m3 [rows, k] at the
// start, f32 scales [rows] at linear_scratch_scales_offset(rows, k). The ops that produce a GEMM input do this as
// they write it (one kernel on CUDA, this by composition on the CPU).
Status quantize_for_linear(const DeviceContext& ctx, const Tensor& x, const Tensor& scratch);
size_t linear_scratch_scales_offset(int64_t rows, int64_t k);

// Whether linear on ctx chooses its kernel for w at batches of `rows` rows by timing candidates on the first such
// call that is not being recorded into a graph (CUDA bf16: ops/cuda/tuned_gemm.h); a recorded call before that keeps
// cublasGemmEx's kernel, so a caller about to record such a batch runs it live once first.
bool linear_chooses_kernel(const DeviceContext& ctx, const Tensor& w, int64_t rows);
// How many such choices (one per weight shape and bucket of rows) linear has made on ctx so far.
size_t linear_kernel_choices(const DeviceContext& ctx);

// Whether ctx runs a [n, k] weight at all: cuBLASLt's FP8 GEMMs need n and k multiples of 16 (every projection of
// the 0.6B/4B/8B is). The model asks at load, so a shape the GEMMs refuse is a message before any weight is read.
Status check_linear_shape(const DeviceContext& ctx, int64_t n, int64_t k, const std::string& name);

// Bytes of the scratch ops::linear needs for x [rows, ≤ max_k] on ctx: the quantised activations and their scales
// on an fp8 context, 0 on others.
size_t linear_scratch_bytes(const DeviceContext& ctx, int64_t rows, int64_t max_k);

}  // namespace embedserve::ops
