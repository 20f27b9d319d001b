// CudaEngine: loads a checkpoint onto the GPU and runs batches through Qwen3CudaModel.
#include "engine/cuda_engine.h"

#include "ops/cuda/cuda_device.h"
#include "weights/model_config.h"
#include "weights/sentence_transformers_config.h"

namespace embedserve {

StatusOr<std::unique_ptr<CudaEngine>> CudaEngine::load(const EngineOptions& options) {
  if (options.max_batch_tokens == 0) return invalid_argument("the batch token budget must be at least 1");
  CudaPrecision precision;
  if (options.dtype == "auto" || options.dtype == "bf16")
    precision = CudaPrecision::kBF16;
  else if (options.dtype == "f32")
    precision = CudaPrecision::kF32;
  else
    return invalid_argument("unknown dtype '" + options.dtype + "' for the CUDA backend: use bf16, f32 or auto");
  EMBEDSERVE_ASSIGN_OR_RETURN(std::vector<cuda::DeviceProperties> devices, cuda::list_devices());
  if (devices.empty())
    return unavailable("--device cuda: no CUDA device is visible (driver " + cuda::driver_version() +
                               ", runtime " + cuda::runtime_version() + "); use --device cpu or auto");
  EMBEDSERVE_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(options.model_dir / "config.json"));
  EMBEDSERVE_ASSIGN_OR_RETURN(SentenceTransformersConfig st, load_sentence_transformers_config(options.model_dir));
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<WeightStore> store, WeightStore::open(options.model_dir));
  // The weights are copied to the device, so the mapping is dropped once the model is loaded.
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<Qwen3CudaModel> model,
                              Qwen3CudaModel::load(config, *store, precision, options.max_batch_tokens));

  EngineInfo info;
  info.model_id = options.model_id.empty() ? options.model_dir.filename().string() : options.model_id;
  info.architecture = "Qwen3Model";
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView emb, store->get("embed_tokens.weight"));
  info.dtype = dtype_name(emb.dtype);
  info.device = Device::kCuda;
  info.hidden_size = config.hidden_size;
  info.vocab_size = static_cast<int>(model->vocab_rows());
  info.max_position_embeddings = config.max_position_embeddings;
  info.pooling = st.pooling;
  info.normalize = st.normalize;
  info.memory_bytes = model->weight_bytes() + model->workspace_bytes();  // device memory
  info.max_batch_tokens = options.max_batch_tokens;
  return std::unique_ptr<CudaEngine>(new CudaEngine(std::move(info), std::move(model)));
}

Status CudaEngine::run(const SequenceBatch& batch, std::span<float> out) {
  // Pooling and normalisation run on the GPU; only [n_seqs, hidden] floats come back.
  return model_->forward(batch.token_ids, batch.seq_offsets, info_.pooling, info_.normalize, out);
}

}  // namespace embedserve
