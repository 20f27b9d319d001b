// create_engine: picks the backend for EngineOptions::device and loads the model on it.
#include "engine/engine_factory.h"

#include "engine/cpu_engine.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "engine/cuda_engine.h"
#include "ops/cuda/cuda_device.h"
#endif

namespace embedserve {
namespace {

StatusOr<std::unique_ptr<Engine>> load_cpu(const EngineOptions& options) {
  if (options.dtype != "auto" && options.dtype != "f32")
    return invalid_argument("the CPU backend computes in f32 only; dtype '" + options.dtype + "' needs --device cuda");
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<CpuEngine> engine, CpuEngine::load(options));
  return std::unique_ptr<Engine>(std::move(engine));
}

#if defined(EMBEDSERVE_HAVE_CUDA)
StatusOr<std::unique_ptr<Engine>> load_cuda(const EngineOptions& options) {
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<CudaEngine> engine, CudaEngine::load(options));
  return std::unique_ptr<Engine>(std::move(engine));
}
#endif

}  // namespace

StatusOr<std::unique_ptr<Engine>> create_engine(const EngineOptions& options) {
  if (options.device != "auto" && options.device != "cpu" && options.device != "cuda")
    return invalid_argument("unknown device '" + options.device + "': use cpu, cuda or auto");
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (options.device == "cuda") return load_cuda(options);
  if (options.device == "auto") {
    // A GPU that is visible is used; discovery failing (a broken driver) falls back to the CPU.
    auto devices = cuda::list_devices();
    if (devices.ok() && !devices->empty()) return load_cuda(options);
  }
#else
  if (options.device == "cuda")
    return unimplemented("this embedserve was built without the CUDA backend (EMBEDSERVE_CUDA=OFF); use --device cpu");
#endif
  return load_cpu(options);
}

}  // namespace embedserve
