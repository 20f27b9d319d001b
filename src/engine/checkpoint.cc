// open_checkpoint and describe_engine: the loading steps the CPU and CUDA engines share.
#include "engine/checkpoint.h"

namespace embedserve {

StatusOr<Checkpoint> open_checkpoint(const EngineOptions& options) {
  if (options.workspace_tokens == 0) return invalid_argument("the workspace must hold at least one token");
  Checkpoint c;
  EMBEDSERVE_ASSIGN_OR_RETURN(c.config, load_model_config(options.model_dir / "config.json"));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.pipeline, load_sentence_transformers_config(options.model_dir));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.store, WeightStore::open(options.model_dir));
  return c;
}

EngineInfo describe_engine(const Checkpoint& checkpoint, const EngineOptions& options, Device device,
                           Precision precision, DType stored_dtype, int64_t vocab_rows, size_t memory_bytes) {
  EngineInfo info;
  info.model_id = options.model_id.empty() ? options.model_dir.filename().string() : options.model_id;
  info.architecture = "Qwen3Model";
  info.dtype = dtype_name(stored_dtype);
  info.device = device;
  info.precision = precision;
  info.hidden_size = checkpoint.config.hidden_size;
  info.vocab_size = static_cast<int>(vocab_rows);
  info.max_position_embeddings = checkpoint.config.max_position_embeddings;
  info.pooling = checkpoint.pipeline.pooling;
  info.normalize = checkpoint.pipeline.normalize;
  info.memory_bytes = memory_bytes;
  info.workspace_tokens = options.workspace_tokens;
  return info;
}

}  // namespace embedserve
