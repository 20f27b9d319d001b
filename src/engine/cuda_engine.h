// CudaEngine: a Qwen3 checkpoint on one NVIDIA GPU behind the Engine interface (built with EMBEDSERVE_CUDA).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/engine_factory.h"
#include "model/qwen3_cuda.h"
#include "weights/weight_store.h"

namespace embedserve {

class CudaEngine final : public Engine {
 public:
  // Loads config.json, the sentence-transformers files and the safetensors of options.model_dir, uploads the
  // weights to GPU 0 in options.dtype ("auto" = bf16, or f32) and allocates the workspace for
  // options.max_batch_tokens. Fails with a clear message without a GPU or without cuBLAS.
  static StatusOr<std::unique_ptr<CudaEngine>> load(const EngineOptions& options);

  // Device, precision and cuBLAS library, for the start-up log.
  const std::string& description() const { return model_->description(); }

 protected:
  Status run(const SequenceBatch& batch, std::span<float> out) override;

 private:
  CudaEngine(EngineInfo info, std::unique_ptr<Qwen3CudaModel> model) : Engine(std::move(info)), model_(std::move(model)) {}

  std::unique_ptr<Qwen3CudaModel> model_;  // owns every device allocation; the weights were copied at load
};

}  // namespace embedserve
