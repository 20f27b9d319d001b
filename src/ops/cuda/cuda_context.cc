// The CUDA DeviceContext state: a non-blocking stream, a cuBLAS handle on it and cuBLAS's workspace, on one GPU.
#include "ops/cuda/cuda_context.h"

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_device.h"

namespace embedserve::ops::cuda_backend {

CudaState::~CudaState() {
  // Destroyed on whatever thread drops the engine: select the state's device for the frees, then restore.
  int previous = -1;
  if (set_device(ordinal, &previous).ok()) {
    graphs.clear();
    fp8.reset();
    tuned_gemm.reset();
    if (handle) blas.destroy(handle);
    if (blas_workspace) cudaFree(blas_workspace);
    if (stream) cudaStreamDestroy(stream);
    cudaSetDevice(previous);
  }
}

Status set_device(int ordinal, int* previous) {
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaGetDevice(previous));
  if (*previous != ordinal) EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaSetDevice(ordinal));
  return Status();
}

StatusOr<std::unique_ptr<CudaState>> create_state(const ContextOptions& options, std::string* description) {
  EMBEDSERVE_ASSIGN_OR_RETURN(std::vector<cuda::DeviceProperties> devices, cuda::list_devices());
  if (devices.empty())
    return unavailable("--device cuda: no CUDA device is visible (driver " + cuda::driver_version() + ", runtime " +
                       cuda::runtime_version() + "); use --device cpu or auto");
  if (options.ordinal < 0 || options.ordinal >= static_cast<int>(devices.size()))
    return invalid_argument("GPU " + std::to_string(options.ordinal) + " does not exist: " +
                            std::to_string(devices.size()) + " visible (CUDA_VISIBLE_DEVICES orders them)");
  EMBEDSERVE_ASSIGN_OR_RETURN(cuda::CublasApi api, cuda::open_cublas(options.cublas_path));
  auto st = std::make_unique<CudaState>();
  st->ordinal = options.ordinal;
  st->graphs.capacity = options.graph_max_tokens > 0 ? options.graph_cache_size : 0;
  st->blas = std::move(api);
  int previous = -1;
  EMBEDSERVE_RETURN_IF_ERROR(set_device(options.ordinal, &previous));
  struct Restore {
    int device;
    ~Restore() { cudaSetDevice(device); }
  } restore{previous};
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::cublas_status(st->blas, st->blas.create(&st->handle), "cublasCreate"));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::cublas_status(st->blas, st->blas.set_stream(st->handle, st->stream), "cublasSetStream"));
  // cuBLAS gets its workspace up front so no GEMM allocates. None by default: without one it cannot pick
  // split-K kernels, whose reduction order changes with the number of rows, so a row's bits do not depend on
  // its batch (measured at the 4B's shapes, docs/ARCHITECTURE.md).
  if (options.cublas_workspace_bytes > 0) {
    const cudaError_t err = cudaMalloc(&st->blas_workspace, options.cublas_workspace_bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      st->blas_workspace = nullptr;
      return resource_exhausted("cudaMalloc of cuBLAS's workspace (EMBEDSERVE_CUBLAS_WORKSPACE_MB) failed: " +
                                std::string(cudaGetErrorString(err)));
    }
    st->blas_workspace_bytes = options.cublas_workspace_bytes;
  }
  EMBEDSERVE_RETURN_IF_ERROR(cuda::cublas_status(
      st->blas, st->blas.set_workspace(st->handle, st->blas_workspace, st->blas_workspace_bytes), "cublasSetWorkspace"));
  // Tuned GEMMs choose among kernels that split no sums, so only where cuBLAS has no workspace either (with one,
  // the user has chosen cuBLAS's split-K and given up batch-independent bits: cublasGemmEx then picks).
  if (options.tune_gemms && st->blas_workspace_bytes == 0) {
    EMBEDSERVE_ASSIGN_OR_RETURN(st->tuned_gemm, cuda::TunedGemm::create(st->blas, st->handle));
  }
  const cuda::DeviceProperties& d = devices[static_cast<size_t>(options.ordinal)];
  if (options.quantization == Quantization::kFp8) {
    if (d.compute_major * 10 + d.compute_minor < 89)
      return invalid_argument("--quantization fp8 needs FP8 tensor cores (compute capability 8.9+: Ada, Hopper or "
                              "later); GPU " + std::to_string(options.ordinal) + " (" + d.name + ") has " +
                              std::to_string(d.compute_major) + "." + std::to_string(d.compute_minor));
    EMBEDSERVE_ASSIGN_OR_RETURN(st->fp8, cuda::Fp8Gemm::create(st->blas));
  }
  *description = "cuda:" + std::to_string(options.ordinal) + " " + d.name + ", cuBLAS " + st->blas.path +
                 " (workspace " + std::to_string(st->blas_workspace_bytes >> 20) + " MiB, " +
                 (st->tuned_gemm ? "bulk batches' (and the largest projections' queries') bf16 GEMMs on the fastest "
                                   "split-K-free kernels"
                                 : "cublasGemmEx's kernels") +
                 ")" +
                 (!st->fp8                          ? ""
                  : st->fp8->outer_vector_scales() ? ", FP8 scales as cuBLASLt outer vectors"
                                                   : ", FP8 scales by a kernel after each GEMM (no outer-vector mode)");
  return st;
}

}  // namespace embedserve::ops::cuda_backend
