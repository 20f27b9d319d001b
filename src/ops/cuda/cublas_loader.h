// cuBLAS loaded with dlopen when a CUDA engine is created, so the binary starts (and the CPU backend runs)
// on machines without CUDA libraries: no static cuBLAS exists, and linking libcublas.so would make every
// start need it.
#pragma once

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

// Loads cuBLAS from `location`: a library file, a folder holding libcublas.so.13, or empty for the default
// places (the dynamic loader's path, then /usr/local/cuda/lib64). Its companion libcublasLt.so.13 is loaded
// first from the same folder, so a folder that is not on the loader's path (pip's nvidia/cublas/lib) works.
// Each DeviceContext calls it once (the loader keeps one copy per file, so a second call costs a lookup).
// Fails with a message naming the library and EMBEDSERVE_CUBLAS_PATH, the variable cli/ reads the location from.
StatusOr<CublasApi> open_cublas(const std::string& location);

// A cuBLAS status as a Status naming the call.
Status cublas_status(const CublasApi& api, cublasStatus_t st, const char* what);

}  // namespace embedserve::cuda
