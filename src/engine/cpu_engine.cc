// CpuEngine: loads a checkpoint for the CPU and runs batches through Qwen3Model with CpuOps.
#include "engine/cpu_engine.h"

#include <string>

#include "weights/model_config.h"
#include "weights/sentence_transformers_config.h"

namespace embedserve {

StatusOr<std::unique_ptr<CpuEngine>> CpuEngine::load(const EngineOptions& options) {
  if (options.max_batch_tokens == 0) return invalid_argument("the batch token budget must be at least 1");
  if (options.threads < 0) return invalid_argument("--threads must be 0 (every core) or more");
  EMBEDSERVE_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(options.model_dir / "config.json"));
  EMBEDSERVE_ASSIGN_OR_RETURN(SentenceTransformersConfig st, load_sentence_transformers_config(options.model_dir));
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::open(options.model_dir));
  auto ops = std::make_unique<ops::CpuOps>(options.threads);
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<Qwen3Model> model, Qwen3Model::load(config, *store, *ops));
  model->reserve(options.max_batch_tokens);

  EngineInfo info;
  info.model_id = options.model_id.empty() ? options.model_dir.filename().string() : options.model_id;
  info.architecture = "Qwen3Model";
  info.dtype = dtype_name(model->stored_dtype());
  info.device = Device::kCpu;
  info.hidden_size = config.hidden_size;
  info.vocab_size = static_cast<int>(model->vocab_rows());
  info.max_position_embeddings = config.max_position_embeddings;
  info.pooling = st.pooling;
  info.normalize = st.normalize;
  // The f32 weights and the workspace; the mapped embedding table is page cache, shared and evictable.
  info.memory_bytes = model->weight_bytes() + model->workspace_bytes();
  info.max_batch_tokens = options.max_batch_tokens;
  return std::unique_ptr<CpuEngine>(
      new CpuEngine(std::move(info), std::move(ops), std::move(store), std::move(model)));
}

Status CpuEngine::run(const SequenceBatch& batch, std::span<float> out) {
  EMBEDSERVE_RETURN_IF_ERROR(model_->forward(batch.token_ids, batch.seq_offsets, info_.pooling, out));
  if (info_.normalize) {
    const size_t d = static_cast<size_t>(info_.hidden_size);
    for (size_t s = 0; s < batch.num_sequences(); ++s) l2_normalize(out.subspan(s * d, d));
  }
  return Status();
}

}  // namespace embedserve
