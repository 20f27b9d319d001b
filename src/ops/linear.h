// linear: nn.Linear without bias, y = x · wᵀ, one GEMM over every row of a padding-free batch.
#pragma once

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
Status linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor& y, const Index& row_groups);

}  // namespace embedserve::ops
