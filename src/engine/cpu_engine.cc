// CpuEngine: loads a checkpoint for the CPU and runs batches through Qwen3Model with CpuOps.
#include "engine/cpu_engine.h"

#include <string>

#include "engine/checkpoint.h"
#include "text/matryoshka.h"

namespace embedserve {

StatusOr<std::unique_ptr<CpuEngine>> CpuEngine::load(const EngineOptions& options) {
  if (options.threads < 0) return invalid_argument("--threads must be 0 (every core) or more");
  EMBEDSERVE_ASSIGN_OR_RETURN(Checkpoint checkpoint, open_checkpoint(options));
  auto ops = std::make_unique<ops::CpuOps>(options.threads);
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<Qwen3Model> model,
                              Qwen3Model::load(checkpoint.config, *checkpoint.store, *ops));
  model->reserve(options.workspace_tokens);
  // The f32 weights and the workspace; the mapped embedding table is page cache, shared and evictable.
  EngineInfo info = describe_engine(checkpoint, options, Device::kCpu, Precision::kF32, model->stored_dtype(), model->vocab_rows(),
                                    model->weight_bytes() + model->workspace_bytes());
  return std::unique_ptr<CpuEngine>(
      new CpuEngine(std::move(info), std::move(ops), std::move(checkpoint.store), std::move(model)));
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
