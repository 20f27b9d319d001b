// nn.Linear without bias on the GPU through cuBLAS: y [m, n] = x [m, k] · w [n, k]ᵀ, row-major.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/cublas_loader.h"

namespace embedserve::cuda {

// f32: SGEMM with TF32 off (CUBLAS_COMPUTE_32F_PEDANTIC), so the parity mode's sums are float32 like
// transformers' float32 reference. bf16: bf16 operands, f32 accumulation, the result rounded to bf16 once —
// what torch's bf16 nn.Linear does through the same library.
// cuBLAS picks its algorithm by shape, so a row's rounding can depend on m (see docs/ARCHITECTURE.md).
Status linear(const CublasApi& api, cublasHandle_t h, const float* x, const float* w, float* y, int64_t m, int64_t n,
              int64_t k);
Status linear(const CublasApi& api, cublasHandle_t h, const __nv_bfloat16* x, const __nv_bfloat16* w,
              __nv_bfloat16* y, int64_t m, int64_t n, int64_t k);
// bf16 operands, the f32 accumulator written as is: a tensor-parallel rank's partial product, rounded once after
// the all-reduce.
Status linear(const CublasApi& api, cublasHandle_t h, const __nv_bfloat16* x, const __nv_bfloat16* w, float* y,
              int64_t m, int64_t n, int64_t k);

}  // namespace embedserve::cuda
