// CudaEngine: loads a checkpoint onto the GPU and runs batches through Qwen3CudaModel.
#include "engine/cuda_engine.h"

#include "ops/cuda/cuda_device.h"
#include "engine/checkpoint.h"

namespace embedserve {

StatusOr<std::unique_ptr<CudaEngine>> CudaEngine::load(const EngineOptions& options) {
  const CudaPrecision precision = options.precision == Precision::kF32 ? CudaPrecision::kF32 : CudaPrecision::kBF16;
  EMBEDSERVE_ASSIGN_OR_RETURN(std::vector<cuda::DeviceProperties> devices, cuda::list_devices());
  if (devices.empty())
    return unavailable("--device cuda: no CUDA device is visible (driver " + cuda::driver_version() +
                               ", runtime " + cuda::runtime_version() + "); use --device cpu or auto");
  EMBEDSERVE_ASSIGN_OR_RETURN(Checkpoint checkpoint, open_checkpoint(options));
  // The weights are copied to the device, so the mapping is dropped once the model is loaded.
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<Qwen3CudaModel> model,
                              Qwen3CudaModel::load(checkpoint.config, *checkpoint.store, precision,
                                                   options.workspace_tokens));
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView emb, checkpoint.store->get("embed_tokens.weight"));
  EngineInfo info = describe_engine(checkpoint, options, Device::kCuda,
                                    precision == CudaPrecision::kF32 ? Precision::kF32 : Precision::kBF16, emb.dtype, model->vocab_rows(),
                                    model->weight_bytes() + model->workspace_bytes());  // device memory
  return std::unique_ptr<CudaEngine>(new CudaEngine(std::move(info), std::move(model)));
}

Status CudaEngine::run(const SequenceBatch& batch, std::span<float> out) {
  // Pooling and normalisation run on the GPU; only [n_seqs, hidden] floats come back.
  return model_->forward(batch.token_ids, batch.seq_offsets, info_.pooling, info_.normalize, out);
}

}  // namespace embedserve
