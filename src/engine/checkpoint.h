// What every backend reads the same way when it loads: the checkpoint's files and the EngineInfo they decide.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/status.h"
#include "core/types.h"
#include "engine/engine.h"
#include "engine/engine_factory.h"
#include "weights/model_config.h"
#include "weights/sentence_transformers_config.h"
#include "weights/weight_store.h"

namespace embedserve {

struct Checkpoint {
  ModelConfig config;                  // config.json
  SentenceTransformersConfig pipeline; // pooling, normalisation, prompts
  std::unique_ptr<WeightStore> store;  // the mapped safetensors
};

// Checks the options every backend needs (a batch budget of at least one token) and opens the model
// directory's config.json, sentence-transformers files and safetensors.
StatusOr<Checkpoint> open_checkpoint(const EngineOptions& options);

// EngineInfo as the checkpoint and options decide it; the backend says where it runs, how many rows its
// embedding table has (the ids Engine::embed accepts), the dtype the weights were stored in, and the memory
// it holds.
EngineInfo describe_engine(const Checkpoint& checkpoint, const EngineOptions& options, Device device,
                           Precision precision, DType stored_dtype, int64_t vocab_rows, size_t memory_bytes);

}  // namespace embedserve
