// linear: one cublasGemmEx call per projection; row-major y = x·wᵀ is column-major yᵀ = w·xᵀ.
#include "ops/cuda/linear_cuda.h"

#include <climits>
#include <string>

namespace embedserve::cuda {
namespace {

Status gemm(const CublasApi& api, cublasHandle_t h, const void* x, const void* w, void* y, int64_t m, int64_t n,
            int64_t k, cudaDataType type, cublasComputeType_t compute, cudaDataType y_type) {
  if (m < 0 || n <= 0 || k <= 0 || m > INT_MAX || n > INT_MAX || k > INT_MAX)
    return invalid_argument("linear: bad shape m=" + std::to_string(m) + " n=" + std::to_string(n) +
                            " k=" + std::to_string(k));
  if (m == 0) return Status();
  const float alpha = 1.0f, beta = 0.0f;
  // Column-major view: w is a k×n matrix (lda k) taken transposed, x a k×m matrix (ldb k), y an n×m one.
  return cublas_status(api,
                       api.gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                   static_cast<int>(k), &alpha, w, type, static_cast<int>(k), x, type,
                                   static_cast<int>(k), &beta, y, y_type, static_cast<int>(n), compute,
                                   CUBLAS_GEMM_DEFAULT),
                       "cublasGemmEx");
}

}  // namespace

Status linear(const CublasApi& api, cublasHandle_t h, const float* x, const float* w, float* y, int64_t m, int64_t n,
              int64_t k) {
  return gemm(api, h, x, w, y, m, n, k, CUDA_R_32F, CUBLAS_COMPUTE_32F_PEDANTIC, CUDA_R_32F);
}

Status linear(const CublasApi& api, cublasHandle_t h, const __nv_bfloat16* x, const __nv_bfloat16* w,
              __nv_bfloat16* y, int64_t m, int64_t n, int64_t k) {
  return gemm(api, h, x, w, y, m, n, k, CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_16BF);
}

Status linear(const CublasApi& api, cublasHandle_t h, const __nv_bfloat16* x, const __nv_bfloat16* w, float* y,
              int64_t m, int64_t n, int64_t k) {
  return gemm(api, h, x, w, y, m, n, k, CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F);
}

}  // namespace embedserve::cuda
