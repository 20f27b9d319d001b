// The CUDA backend's per-context state (stream, cuBLAS handle and workspace on one GPU) and the typed dispatch
// every CUDA op wrapper uses. Included only where EMBEDSERVE_HAVE_CUDA is set.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "ops/context.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/linear_fp8_cuda.h"
#include "ops/cuda/tuned_gemm.h"

namespace embedserve::ops::cuda_backend {

// The recorded graphs of one context, by key, least recently used last (ops/graph.h says what a key names).
struct GraphCache {
  struct Entry {
    cudaGraphExec_t exec = nullptr;
    std::list<uint64_t>::iterator position;
  };
  size_t capacity = 0;
  std::unordered_map<uint64_t, Entry> entries;
  std::list<uint64_t> order;
  // The keys of the last kRecentCalls calls that ran live (a ring) and how often each occurs among them: a key is
  // recorded once it is that frequent (ops/graph.h, kRecordAfterCalls; cuda_graph.cc says why).
  std::vector<uint64_t> recent;
  size_t recent_next = 0;
  std::unordered_map<uint64_t, uint32_t> recent_count;
  void clear();  // destroys every graph; CudaState calls it with its device current, before the stream goes
};

struct CudaState final : BackendState {
  int ordinal = 0;
  cudaStream_t stream = nullptr;
  cuda::CublasApi blas;
  cublasHandle_t handle = nullptr;
  void* blas_workspace = nullptr;
  size_t blas_workspace_bytes = 0;
  GraphCache graphs;
  std::unique_ptr<cuda::Fp8Gemm> fp8;  // cuBLASLt's FP8 GEMMs: only on an fp8 context
  // bf16 GEMMs of bulk batches (and the largest projections' queries) on the fastest split-K-free kernel per shape:
  // without a cuBLAS workspace, unless options turn it off
  std::unique_ptr<cuda::TunedGemm> tuned_gemm;
  ~CudaState() override;
};

// Makes the stream, cuBLAS handle and workspace on GPU options.ordinal; `description` gets the device's name.
StatusOr<std::unique_ptr<CudaState>> create_state(const ContextOptions& options, std::string* description);

inline const CudaState& state(const DeviceContext& ctx) { return *static_cast<const CudaState*>(ctx.backend()); }
inline cudaStream_t stream(const DeviceContext& ctx) { return state(ctx).stream; }

// Sets the calling thread's current device, returning the previous one in *previous.
Status set_device(int ordinal, int* previous);

// Calls f with a value of the element type `dtype` names (float or __nv_bfloat16).
template <typename F>
Status by_dtype(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::kF32: return f(float{});
    case DType::kBF16: return f(__nv_bfloat16{});
    default: return unimplemented(std::string(op) + ": the CUDA backend computes in f32 or bf16, not " + dtype_name(dtype));
  }
}

}  // namespace embedserve::ops::cuda_backend
