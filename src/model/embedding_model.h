// EmbeddingModel: what an engine needs from any model family — ids in, one pooled vector per sequence out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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

// The keys and values of one input embedded in chunks (chunked prefill): every layer's k and v after RoPE for
// the tokens processed so far, in the context's dtype and memory. Freed with the object.
class SequenceCache {
 public:
  virtual ~SequenceCache() = default;
  size_t capacity() const { return capacity_; }    // the input's full length
  size_t processed() const { return processed_; }  // tokens whose keys and values it holds: the next chunk's start

 protected:
  explicit SequenceCache(size_t capacity) : capacity_(capacity) {}
  size_t capacity_;
  size_t processed_ = 0;
};

class EmbeddingModel {
 public:
  virtual ~EmbeddingModel() = default;

  // Runs the sequences laid end to end in `token_ids` (sequence s is [seq_offsets[s], seq_offsets[s+1]),
  // positions restarting at 0) and writes one pooled — and, when `normalize`, L2-normalised — vector per sequence
  // to out f32 [n_seqs, hidden] in host memory. Ids must already be in [0, vocab_rows()), no sequence empty,
  // at most workspace_tokens() tokens in all (Engine::embed checks all three).
  virtual Status forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                         bool normalize, std::span<float> out) = 0;

  // Whether forward_chunk can embed an input in chunks under `pooling`: it pools from the last chunk alone.
  virtual bool takes_chunks(Pooling pooling) const = 0;
  // Memory for the keys and values of an input of `tokens` tokens on the context's device; resource_exhausted,
  // naming the input's length and the memory it needs, when that does not fit.
  virtual StatusOr<std::unique_ptr<SequenceCache>> new_sequence_cache(size_t tokens) = 0;
  // Embeds the next chunk of the input `cache` belongs to: positions cache.processed() onwards, attending over
  // the keys and values of every earlier chunk, whose own it then adds. At the input's last chunk (the cache
  // full) writes its pooled vector to out f32 [1, hidden]; before that, `out` is left alone. The chunk's vector
  // is bitwise the one forward() gives the whole input wherever the backend's GEMMs round a row the same at
  // any row count (CUDA bf16, AVX-512 OpenBLAS), else within the dtype's tolerance.
  virtual Status forward_chunk(std::span<const int32_t> token_ids, SequenceCache& cache, Pooling pooling,
                               bool normalize, std::span<float> out) = 0;

  // Where the context records graphs: records now those of one query of up to 63 tokens under `pooling` and
  // `normalize` (what the engine serves), so that the first queries replay a graph instead of running live; the
  // engine calls it at load, and its time is part of the start-up. Elsewhere it does nothing.
  virtual Status record_query_graphs(Pooling pooling, bool normalize) = 0;

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
