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
  if (options.precision == Precision::kBF16)
    return invalid_argument("the CPU backend computes in f32 only; --dtype bf16 needs --device cuda");
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
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (options.device == Device::kCuda) return load_cuda(options);
  if (!options.device) {
    // A GPU that is visible is used; discovery failing (a broken driver) falls back to the CPU.
    auto devices = cuda::list_devices();
    if (devices.ok() && !devices->empty()) return load_cuda(options);
  }
#else
  if (options.device == Device::kCuda)
    return unimplemented("this embedserve was built without the CUDA backend (EMBEDSERVE_CUDA=OFF); use --device cpu");
#endif
  return load_cpu(options);
}

}  // namespace embedserve
