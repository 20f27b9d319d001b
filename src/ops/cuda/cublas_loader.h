// cuBLAS loaded with dlopen when a CUDA engine is created, so the binary starts (and the CPU backend runs)
// on machines without CUDA libraries: no static cuBLAS exists, and linking libcublas.so would make every
// start need it.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>

#include <string>

#include "core/status.h"

namespace embedserve::cuda {

// The few cuBLAS entry points the backend calls, resolved from libcublas.so.13.
struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t) = nullptr;
  cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  const char* (*status_string)(cublasStatus_t) = nullptr;
  std::string path;  // the file the table was loaded from, for the start-up log
};

// The cuBLASLt entry points of the FP8 GEMMs (ops/cuda/linear_fp8_cuda.cc) and the tuned bf16 GEMMs
// (ops/cuda/tuned_gemm.h), resolved from libcublasLt.so.13, which open_cublas loads anyway (libcublas depends on it).
struct CublasLtApi {
  cublasStatus_t (*create)(cublasLtHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasLtHandle_t) = nullptr;
  cublasStatus_t (*desc_create)(cublasLtMatmulDesc_t*, cublasComputeType_t, cudaDataType_t) = nullptr;
  cublasStatus_t (*desc_destroy)(cublasLtMatmulDesc_t) = nullptr;
  cublasStatus_t (*desc_set)(cublasLtMatmulDesc_t, cublasLtMatmulDescAttributes_t, const void*, size_t) = nullptr;
  cublasStatus_t (*layout_create)(cublasLtMatrixLayout_t*, cudaDataType, uint64_t, uint64_t, int64_t) = nullptr;
  cublasStatus_t (*layout_destroy)(cublasLtMatrixLayout_t) = nullptr;
  cublasStatus_t (*preference_create)(cublasLtMatmulPreference_t*) = nullptr;
  cublasStatus_t (*preference_destroy)(cublasLtMatmulPreference_t) = nullptr;
  cublasStatus_t (*preference_set)(cublasLtMatmulPreference_t, cublasLtMatmulPreferenceAttributes_t, const void*,
                                   size_t) = nullptr;
  cublasStatus_t (*heuristic)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int,
                              cublasLtMatmulHeuristicResult_t[], int*) = nullptr;
  cublasStatus_t (*matmul)(cublasLtHandle_t, cublasLtMatmulDesc_t, const void*, const void*, cublasLtMatrixLayout_t,
                           const void*, cublasLtMatrixLayout_t, const void*, const void*, cublasLtMatrixLayout_t,
                           void*, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t*, void*, size_t,
                           cudaStream_t) = nullptr;
  cublasStatus_t (*algo_config_get)(const cublasLtMatmulAlgo_t*, cublasLtMatmulAlgoConfigAttributes_t, void*, size_t,
                                    size_t*) = nullptr;
  // Beyond the heuristic's few: every algorithm id and the tiles and stages it supports, configured by hand.
  cublasStatus_t (*algo_get_ids)(cublasLtHandle_t, cublasComputeType_t, cudaDataType_t, cudaDataType_t, cudaDataType_t,
                                 cudaDataType_t, cudaDataType_t, int, int[], int*) = nullptr;
  cublasStatus_t (*algo_init)(cublasLtHandle_t, cublasComputeType_t, cudaDataType_t, cudaDataType_t, cudaDataType_t,
                              cudaDataType_t, cudaDataType_t, int, cublasLtMatmulAlgo_t*) = nullptr;
  cublasStatus_t (*algo_cap_get)(const cublasLtMatmulAlgo_t*, cublasLtMatmulAlgoCapAttributes_t, void*, size_t,
                                 size_t*) = nullptr;
  cublasStatus_t (*algo_config_set)(cublasLtMatmulAlgo_t*, cublasLtMatmulAlgoConfigAttributes_t, const void*,
                                    size_t) = nullptr;
  cublasStatus_t (*algo_check)(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                               cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t*,
                               cublasLtMatmulHeuristicResult_t*) = nullptr;
};

// Resolves the cuBLASLt table from the libcublasLt.so.13 that open_cublas loaded (`api.path`'s companion).
StatusOr<CublasLtApi> open_cublas_lt(const CublasApi& api);

// Loads cuBLAS from `location`: a library file, a folder holding libcublas.so.13, or empty for the default
// places (the dynamic loader's path, then /usr/local/cuda/lib64). Its companion libcublasLt.so.13 is loaded
// first from the same folder, so a folder that is not on the loader's path (pip's nvidia/cublas/lib) works.
// Each DeviceContext calls it once (the loader keeps one copy per file, so a second call costs a lookup).
// Fails with a message naming the library and EMBEDSERVE_CUBLAS_PATH, the variable cli/ reads the location from.
StatusOr<CublasApi> open_cublas(const std::string& location);

// A cuBLAS status as a Status naming the call.
Status cublas_status(const CublasApi& api, cublasStatus_t st, const char* what);

}  // namespace embedserve::cuda
