// The model registry: config.json's `architectures` / `model_type` pick the class that loads and runs a checkpoint.
#pragma once

#include <cstddef>
#include <memory>

#include "core/status.h"
#include "model/embedding_model.h"
#include "ops/context.h"
#include "weights/model_config.h"
#include "weights/weight_store.h"

namespace embedserve {

// Loads the checkpoint's weights onto ctx's device and sizes the workspace for `workspace_tokens` tokens.
// `store` (the mapped safetensors) and `ctx` must outlive the model. An architecture nobody registered is an
// error naming it and the ones that are.
StatusOr<std::unique_ptr<EmbeddingModel>> load_model(const ModelConfig& config, const WeightStore& store,
                                                     const ops::DeviceContext& ctx, size_t workspace_tokens);

// What load_model would hold in ctx's memory (weights in the context's precision, and the workspace for
// `workspace_tokens`), asked of the model family itself before anything is read or allocated.
struct ModelMemory {
  size_t weights = 0;
  size_t workspace = 0;
  size_t total() const { return weights + workspace; }
};
// Whether the family can split the model among `ranks` tensor-parallel ranks (each rank's context then loads its
// share): an error naming the sizes that do not divide and the rank counts that would, before anything loads.
Status check_tensor_parallel(const ModelConfig& config, int ranks);

StatusOr<ModelMemory> model_memory(const ModelConfig& config, const WeightStore& store, const ops::DeviceContext& ctx,
                                   size_t workspace_tokens);

}  // namespace embedserve
