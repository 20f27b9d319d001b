// CpuEngine: a Qwen3 checkpoint on the CPU behind the Engine interface.
#pragma once

#include <memory>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/engine_factory.h"
#include "model/qwen3.h"
#include "ops/cpu/cpu_ops.h"
#include "weights/weight_store.h"

namespace embedserve {

class CpuEngine final : public Engine {
 public:
  // Loads config.json, the sentence-transformers files and the safetensors of options.model_dir, widens the
  // weights to f32 and allocates the workspace for options.max_batch_tokens.
  static StatusOr<std::unique_ptr<CpuEngine>> load(const EngineOptions& options);

 protected:
  Status run(const SequenceBatch& batch, std::span<float> out) override;

 private:
  CpuEngine(EngineInfo info, std::unique_ptr<ops::CpuOps> ops, std::unique_ptr<WeightStore> store,
            std::unique_ptr<Qwen3Model> model)
      : Engine(std::move(info)), ops_(std::move(ops)), store_(std::move(store)), model_(std::move(model)) {}

  // Declared in the order they depend on one another: the model reads ops_ and the store's mapping.
  std::unique_ptr<ops::CpuOps> ops_;
  std::unique_ptr<WeightStore> store_;
  std::unique_ptr<Qwen3Model> model_;
};

}  // namespace embedserve
