// Turns CUDA runtime errors into Status values; every CUDA call in ops/cuda goes through it.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/status.h"

namespace embedserve::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status();
  return internal_error(std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

}  // namespace embedserve::cuda

// Checks a CUDA runtime call; returns its failure as a Status naming the call.
#define EMBEDSERVE_CUDA_RETURN_IF_ERROR(call) EMBEDSERVE_RETURN_IF_ERROR(::embedserve::cuda::cuda_status((call), #call))
