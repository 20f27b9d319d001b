// FP8 GEMMs through cuBLASLt: y bf16 [m, n] = (xq e4m3 [m, k] · wq e4m3 [n, k]ᵀ) scaled per token and per output
// channel, one plan (descriptors and algorithm) per shape, kept for the context's life.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <map>
#include <memory>
#include <tuple>

#include "core/status.h"
#include "ops/cuda/cublas_loader.h"

namespace embedserve::cuda {

class Fp8Gemm {
 public:
  // Loads cuBLASLt's table beside `api`'s cuBLAS and makes a handle. `outer_vector_scales` false forces the
  // scaling kernel even where cuBLASLt has the outer-vector mode (tests compare the two paths).
  static StatusOr<std::unique_ptr<Fp8Gemm>> create(const CublasApi& api, bool outer_vector_scales = true);
  ~Fp8Gemm();
  Fp8Gemm(const Fp8Gemm&) = delete;
  Fp8Gemm& operator=(const Fp8Gemm&) = delete;

  // y[i, j] = Σ_k xq[i, k]·wq[j, k] · x_scales[i] · w_scales[j], f32 accumulation (no fast accumulation), rounded
  // to bf16 once. Row-major x and y, w as stored ([n, k]: cuBLASLt's "TN", the one FP8 layout it runs); k and n
  // multiples of 16, pointers 16-byte aligned. No workspace, so no split-K: a row's bits depend on its row alone
  // as long as cuBLASLt picks kernels that sum k in one order (measured by the op suite on the GPU).
  Status run(cudaStream_t stream, const uint8_t* xq, const float* x_scales, const uint8_t* wq, const float* w_scales,
             __nv_bfloat16* y, int64_t m, int64_t n, int64_t k);
  // Whether the GEMMs apply both scales themselves (cuBLASLt's outer-vector scale mode, CUDA 12.9+ on Hopper),
  // or a second kernel does (asked at create()).
  bool outer_vector_scales() const { return outer_vec_ != 0; }

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
    bool outer_vec = false;
  };
  explicit Fp8Gemm(CublasLtApi lt) : lt_(lt) {}
  StatusOr<Plan> make_plan(int64_t m, int64_t n, int64_t k, bool outer_vec, const void* scale_a, const void* scale_b);
  void destroy(Plan& p);

  CublasLtApi lt_;
  cublasLtHandle_t handle_ = nullptr;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Plan> plans_;
  int outer_vec_ = 0;  // 1 if cuBLASLt takes per-row/per-column scales (asked at create())
};

}  // namespace embedserve::cuda
