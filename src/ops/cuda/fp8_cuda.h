// The FP8 path's own kernels: per-token quantisation of bf16 activations to e4m3, and the scaling epilogue used
// where cuBLASLt offers no per-row/per-column scales.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::cuda {

// q e4m3 [m, k] = e4m3(x / scale[i]), scale f32 [m] = max|x[i, :]| / 448 (1 for an all-zero row): one block per
// row, so a row's codes and scale depend on that row alone (batch invariance). Rounds as core/float8.h does
// (nearest even, saturating), so the CPU reference gives the same codes for the same inputs.
Status quantize_rows_e4m3(const __nv_bfloat16* x, int64_t m, int64_t k, uint8_t* q, float* scales, cudaStream_t stream);

// y bf16 [m, n] = bf16(float(y) * row_scales[i] * col_scales[j]), in place: the scales of a GEMM run with unit
// scales.
Status scale_rows_columns(__nv_bfloat16* y, int64_t m, int64_t n, const float* row_scales, const float* col_scales,
                          cudaStream_t stream);

}  // namespace embedserve::cuda
