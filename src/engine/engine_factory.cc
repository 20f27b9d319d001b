// create_engine: picks the device for EngineOptions::device and loads the model on it.
#include "engine/engine_factory.h"

#include "engine/model_engine.h"
#include "engine/tensor_parallel_engine.h"
#include "ops/context.h"

namespace embedserve {

Device resolve_device(std::optional<Device> requested) {
  // auto: a GPU that is visible is used; none (or a broken driver) means the CPU.
  return requested ? *requested : (ops::visible_gpus() > 0 ? Device::kCuda : Device::kCpu);
}

StatusOr<std::unique_ptr<Engine>> create_engine(const EngineOptions& options) {
  const Device device = resolve_device(options.device);
  // bf16 means bf16 compute on a GPU and bf16 weights with f32 activations on the CPU (EngineInfo says which ran).
  if (options.tensor_parallel < 1) return invalid_argument("--tp must be 1 or more");
  if (options.tensor_parallel > 1) {  // one engine over several ranks; tp 1 never touches NCCL
    EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelEngine> tp, TensorParallelEngine::load(options, device));
    return std::unique_ptr<Engine>(std::move(tp));
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<ModelEngine> engine, ModelEngine::load(options, device));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace embedserve
