// ModelEngine: context, checkpoint and model wired together; each batch runs with the context's device selected.
#include "engine/model_engine.h"

#include <string>

#include "engine/checkpoint.h"
#include "model/registry.h"

namespace embedserve {

StatusOr<std::unique_ptr<ModelEngine>> ModelEngine::load(const EngineOptions& options, Device device) {
  ops::ContextOptions co;
  co.device = device;
  co.ordinal = options.device_ordinal;
  co.precision = options.precision;
  co.threads = options.threads;
  co.cpu_gemm_kernel = options.cpu_gemm_kernel;
  co.cublas_path = options.cublas_path;
  co.cublas_workspace_bytes = options.cublas_workspace_bytes;
  co.graph_max_tokens = options.graph_max_tokens;
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<ops::DeviceContext> ctx, ops::DeviceContext::create(co));
  EMBEDSERVE_ASSIGN_OR_RETURN(Checkpoint checkpoint, open_checkpoint(options));
  const ops::ScopedDevice on_device(*ctx);
  EMBEDSERVE_RETURN_IF_ERROR(on_device.status());
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingModel> model,
                              load_model(checkpoint.config, *checkpoint.store, *ctx, options.workspace_tokens));
  // Weights (copies: bf16 as stored, or widened to f32 for the CPU's f32 mode) and the workspace: host memory on
  // the CPU, device memory on a GPU.
  EngineInfo info = describe_engine(checkpoint, options, device, ctx->precision(), model->stored_dtype(),
                                    model->vocab_rows(), model->weight_bytes() + model->workspace_bytes());
  info.backend = ctx->description();
  info.chunked_prefill = model->takes_chunks(info.pooling);
  info.weights_dtype = dtype_name(ctx->weight_dtype());
  info.weight_bytes = model->weight_bytes();
  info.workspace_bytes = model->workspace_bytes();
  // Every weight, the table too, is a copy: drop the mapping, so nothing reads the file after load (a checkpoint
  // truncated or overwritten while serving would otherwise kill the process with SIGBUS at the next read).
  checkpoint.store.reset();
  return std::unique_ptr<ModelEngine>(new ModelEngine(std::move(info), std::move(ctx), std::move(model)));
}

Status ModelEngine::run(const SequenceBatch& batch, std::span<float> out) {
  // The batcher thread that runs batches is not the thread that loaded: select the device here.
  const ops::ScopedDevice on_device(*ctx_);
  EMBEDSERVE_RETURN_IF_ERROR(on_device.status());
  if (batch.chunk) return run_chunk(batch, out);
  return model_->forward(batch.token_ids, batch.seq_offsets, info_.pooling, info_.normalize, out);
}

Status ModelEngine::run_chunk(const SequenceBatch& batch, std::span<float> out) {
  const SequenceChunk& chunk = *batch.chunk;
  auto it = sequences_.find(chunk.sequence);
  if (chunk.start == 0) {
    // A first chunk starts its input over (a name reused after an input that never finished).
    if (it != sequences_.end()) sequences_.erase(it);
    EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<SequenceCache> cache, model_->new_sequence_cache(chunk.total));
    it = sequences_.emplace(chunk.sequence, std::move(cache)).first;
  } else if (it == sequences_.end() || it->second->processed() != chunk.start ||
             it->second->capacity() != chunk.total) {
    return internal_error("chunk at token " + std::to_string(chunk.start) + " of input " +
                          std::to_string(chunk.sequence) + " does not continue where that input's last chunk ended");
  }
  const Status st = model_->forward_chunk(batch.token_ids, *it->second, info_.pooling, info_.normalize, out);
  // Its keys and values are read no more once the input is done, or once a chunk of it failed.
  if (!st.ok() || it->second->processed() == it->second->capacity()) sequences_.erase(it);
  return st;
}

void ModelEngine::end_sequence(uint64_t sequence) {
  const ops::ScopedDevice on_device(*ctx_);  // device memory is freed with the device selected
  sequences_.erase(sequence);
}

}  // namespace embedserve
