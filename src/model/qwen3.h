// Qwen3Model: the forward pass of a Qwen3 checkpoint, from token ids to pooled hidden states.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "model/workspace.h"
#include "ops/ops.h"
#include "weights/model_config.h"
#include "weights/weight_store.h"

namespace embedserve {

// One decoder layer's weights, widened to f32 once at load (the CPU GEMMs run in f32).
struct Qwen3LayerWeights {
  std::vector<float> input_layernorm;           // f32 [hidden]
  std::vector<float> q_proj;                    // f32 [heads * head_dim, hidden]
  std::vector<float> k_proj;                    // f32 [kv_heads * head_dim, hidden]
  std::vector<float> v_proj;                    // f32 [kv_heads * head_dim, hidden]
  std::vector<float> q_norm;                    // f32 [head_dim]
  std::vector<float> k_norm;                    // f32 [head_dim]
  std::vector<float> o_proj;                    // f32 [hidden, heads * head_dim]
  std::vector<float> post_attention_layernorm;  // f32 [hidden]
  std::vector<float> gate_proj;                 // f32 [intermediate, hidden]
  std::vector<float> up_proj;                   // f32 [intermediate, hidden]
  std::vector<float> down_proj;                 // f32 [hidden, intermediate]
};

class Qwen3Model {
 public:
  // Reads and shape-checks every tensor `config` implies from `store`. The embedding table stays in
  // `store`'s mapping in its stored dtype (rows are widened as they are looked up), so `store` must
  // outlive the model. `ops` must outlive it too.
  static StatusOr<std::unique_ptr<Qwen3Model>> load(const ModelConfig& config, const WeightStore& store,
                                                    const ops::Ops& ops);

  // Runs the sequences laid end to end in `token_ids` (sequence s is [seq_offsets[s], seq_offsets[s+1]),
  // positions restarting at 0) and writes one pooled, not yet normalised, hidden state per sequence:
  // out f32 [n_seqs, hidden]. Ids must already be in [0, vocab_size) and no sequence empty.
  Status forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                 std::span<float> out);

  // Allocates the workspace for batches of up to `max_tokens` tokens now rather than on first use.
  void reserve(size_t max_tokens);

  const ModelConfig& config() const { return config_; }
  int64_t vocab_rows() const;      // rows of embed_tokens: valid ids are [0, vocab_rows())
  DType stored_dtype() const { return embed_tokens_.dtype; }
  size_t weight_bytes() const;     // f32 weights held in memory (the mapped embedding table excluded)
  size_t workspace_bytes() const;  // what reserve() allocated
  // Workspace bytes a batch of n_tokens tokens needs.
  static size_t workspace_bytes_for(const ModelConfig& config, size_t n_tokens);

 private:
  Qwen3Model(const ModelConfig& config, const ops::Ops& ops) : config_(config), ops_(ops) {}
  // One decoder layer over the rows in ws_. With `pooled_rows` non-empty (the last layer under last-token
  // or CLS pooling) only those rows are carried past the key/value projections.
  void decoder_layer(const Qwen3LayerWeights& w, std::span<const int32_t> pooled_rows);
  void allocate(size_t n_tokens);

  ModelConfig config_;
  const ops::Ops& ops_;
  TensorView embed_tokens_;                 // [vocab, hidden] as stored, mapped
  std::vector<Qwen3LayerWeights> layers_;
  std::vector<float> norm_;                 // f32 [hidden]
  std::vector<float> inv_freq_;             // f32 [head_dim / 2]
  Qwen3Workspace ws_;
};

}  // namespace embedserve
