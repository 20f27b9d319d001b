// create_engine: picks the device for EngineOptions::device and loads the model on it.
#include "engine/engine_factory.h"

#include "engine/model_engine.h"
#include "ops/context.h"

namespace embedserve {

StatusOr<std::unique_ptr<Engine>> create_engine(const EngineOptions& options) {
  // auto: a GPU that is visible is used; none (or a broken driver) means the CPU.
  const Device device = options.device ? *options.device : (ops::visible_gpus() > 0 ? Device::kCuda : Device::kCpu);
  EngineOptions chosen = options;
  // bf16 asked for with the device left to us, and no GPU found: the CPU's f32 (EngineInfo says which ran). An
  // explicit --device cpu --dtype bf16 stays an error.
  if (!options.device && device == Device::kCpu && options.precision == Precision::kBF16) chosen.precision = Precision::kF32;
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<ModelEngine> engine, ModelEngine::load(chosen, device));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace embedserve
