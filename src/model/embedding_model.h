// EmbeddingModel: what an engine needs from any model family — ids in, one pooled vector per sequence out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "core/status.h"
#include "core/types.h"
#include "ops/tensor.h"

namespace embedserve {

// Called with each named intermediate of a forward pass (llama.cpp's names: "inp_embd", "attn_norm", "Qcur",
// "Kcur", "Vcur", "kqv_out", "attn_out", "ffn_inp", "ffn_norm", "ffn_gate_up", "ffn_act", "ffn_out", "l_out",
// "result_norm"), with the layer (-1 outside the layers) and the tensor in device memory. The model
// synchronises nothing for it: the callee copies what it wants (ops::copy_bytes_to_host waits for the device).
using IntermediateSink = std::function<void(std::string_view name, int layer, const ops::Tensor& value)>;

class EmbeddingModel {
 public:
  virtual ~EmbeddingModel() = default;

  // Runs the sequences laid end to end in `token_ids` (sequence s is [seq_offsets[s], seq_offsets[s+1]),
  // positions restarting at 0) and writes one pooled — and, when `normalize`, L2-normalised — vector per sequence
  // to out f32 [n_seqs, hidden] in host memory. Ids must already be in [0, vocab_rows()), no sequence empty,
  // at most workspace_tokens() tokens in all (Engine::embed checks all three).
  virtual Status forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                         bool normalize, std::span<float> out) = 0;

  // Every named intermediate of the following forward passes goes to `sink` (none when empty). Debugging only:
  // it costs a device-to-host copy per intermediate.
  virtual void set_intermediate_sink(IntermediateSink sink) = 0;

  virtual int64_t vocab_rows() const = 0;      // rows of the embedding table: valid ids are [0, vocab_rows())
  virtual DType stored_dtype() const = 0;      // the checkpoint's dtype
  virtual size_t weight_bytes() const = 0;     // weights held in the context's memory (a mapped table excluded)
  virtual size_t workspace_bytes() const = 0;  // activations and index arrays, sized once at load
  virtual size_t workspace_tokens() const = 0; // the largest batch the workspace holds
};

}  // namespace embedserve
