// Qwen3CudaModel: the Qwen3 forward pass on one GPU, weights and workspace in device memory.
// A second model definition beside qwen3.cc for now: ops::Ops is host-pointer, f32-only and takes the
// weights as host vectors, so the GPU pass is written here against ops/cuda, step for step in qwen3.cc's
// order (docs/ARCHITECTURE.md, "The CUDA backend", says why and how the two become one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "core/status.h"
#include "core/types.h"
#include "weights/model_config.h"
#include "weights/weight_store.h"

namespace embedserve {

// The element type of the GPU's weights and activations. f32: cuBLAS SGEMM with TF32 off, for parity with
// transformers' float32 reference. bf16: bf16 weights and activations with f32 accumulation, transformers'
// bf16 semantics (each op's result rounded to bf16), for speed.
enum class CudaPrecision { kF32, kBF16 };
const char* cuda_precision_name(CudaPrecision p);

class Qwen3CudaModel {
 public:
  virtual ~Qwen3CudaModel() = default;

  // Uploads every tensor `config` implies from `store`, converted to `precision` (bf16, f16 and f32
  // checkpoints all work: f16 and f32 weights are rounded to bf16 in the bf16 mode, a loss the user chose),
  // and allocates the workspace for batches of up to `max_tokens` tokens with cudaMalloc, once. Needs a
  // visible GPU and cuBLAS (loaded here).
  static StatusOr<std::unique_ptr<Qwen3CudaModel>> load(const ModelConfig& config, const WeightStore& store,
                                                        CudaPrecision precision, size_t max_tokens);

  // out f32 [n_seqs, hidden] (host): pooled and, when `normalize`, L2-normalised. Ids must already be
  // in [0, vocab_rows()), no sequence empty, at most max_tokens tokens in all.
  virtual Status forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                         bool normalize, std::span<float> out) = 0;

  virtual int64_t vocab_rows() const = 0;
  virtual size_t weight_bytes() const = 0;     // device memory of the weights
  virtual size_t workspace_bytes() const = 0;  // device memory of activations, index arrays and cuBLAS's workspace
  virtual std::string description() const = 0;  // device, precision and cuBLAS path, for the start-up log
};

}  // namespace embedserve
