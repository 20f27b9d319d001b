// create_engine: picks the backend for EngineOptions::device and loads the model on it.
#include "engine/engine_factory.h"

#include "engine/cpu_engine.h"

namespace embedserve {

StatusOr<std::unique_ptr<Engine>> create_engine(const EngineOptions& options) {
  if (options.device == "cuda")
    return unimplemented("the CUDA backend is not part of this build yet; use --device cpu");
  if (options.device != "auto" && options.device != "cpu")
    return invalid_argument("unknown device '" + options.device + "': use cpu, cuda or auto");
  // "auto": no CUDA backend exists yet, so the CPU.
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<CpuEngine> engine, CpuEngine::load(options));
  return std::unique_ptr<Engine>(std::move(engine));
}

}  // namespace embedserve
