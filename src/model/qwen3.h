// Qwen3Model: the forward pass of a Qwen3 checkpoint over the op API, from token ids to pooled vectors, on any backend.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "model/embedding_model.h"
#include "model/graph_buckets.h"
#include "ops/context.h"
#include "ops/memory.h"
#include "ops/rope.h"
#include "ops/tensor.h"
#include "weights/model_config.h"
#include "weights/weight_store.h"

namespace embedserve {

// What one rank of a tensor-parallel group holds of each layer (Megatron's split): query and key/value heads
// [rank·heads, (rank+1)·heads) of each, and MLP columns [rank·intermediate, …); q/k/v and gate/up by their output
// rows, o_proj and down_proj by their input columns, so one all-reduce after each of the two gives every rank the
// whole layer's output. One rank (the default) holds everything.
struct Qwen3Shard {
  int rank = 0;
  int ranks = 1;
  int heads = 0;             // query heads of this rank
  int kv_heads = 0;          // key/value heads of this rank
  int64_t intermediate = 0;  // MLP columns of this rank
  int64_t q_dim(int64_t head_dim) const { return int64_t{heads} * head_dim; }
  int64_t kv_dim(int64_t head_dim) const { return int64_t{kv_heads} * head_dim; }
  // ranks must divide the config's heads, kv heads and intermediate size (check_ranks).
  static Qwen3Shard of(const ModelConfig& config, int rank, int ranks);
  // Whether `ranks` ranks can share the model: an error naming the sizes that do not divide, and the counts that do.
  static Status check_ranks(const ModelConfig& config, int ranks);
};

// One decoder layer's weights, in the context's dtype and memory (this rank's share of them, see Qwen3Shard).
struct Qwen3LayerWeights {
  ops::Weight input_layernorm;           // [1, hidden]
  // k_proj's, v_proj's and q_proj's rows stacked: [(2 * kv_heads + heads) * head_dim, hidden]. One GEMM for all
  // three (a query reads the weights once instead of in three launches); its first rows alone give k and v for
  // the last layer, whose q is needed only for the pooled rows.
  ops::Weight kvq_proj;
  ops::Weight q_norm;                    // [1, head_dim]
  ops::Weight k_norm;                    // [1, head_dim]
  ops::Weight o_proj;                    // [hidden, heads * head_dim]
  ops::Weight post_attention_layernorm;  // [1, hidden]
  ops::Weight gate_up_proj;              // [2 * intermediate, hidden]: gate_proj's rows, then up_proj's (one GEMM)
  ops::Weight down_proj;                 // [hidden, intermediate]
};

// A Qwen3 input's keys and values between its chunks: k and v each [layers, capacity, kv_heads * head_dim], in
// the context's dtype and memory, rows after RoPE as attention reads them.
class Qwen3SequenceCache final : public SequenceCache {
 public:
  Qwen3SequenceCache(size_t capacity, int64_t kv_dim, ops::Buffer k, ops::Buffer v)
      : SequenceCache(capacity), kv_dim_(kv_dim), k_(std::move(k)), v_(std::move(v)) {}
  // Rows [begin, begin + count) of `layer`'s keys or values: [count, kv_dim].
  ops::Tensor keys(DType dtype, int layer, int64_t begin, int64_t count) const {
    return rows(k_, dtype, layer, begin, count);
  }
  ops::Tensor values(DType dtype, int layer, int64_t begin, int64_t count) const {
    return rows(v_, dtype, layer, begin, count);
  }

 private:
  friend class Qwen3Model;  // advances processed_ once a chunk has run
  ops::Tensor rows(const ops::Buffer& buffer, DType dtype, int layer, int64_t begin, int64_t count) const;
  int64_t kv_dim_;
  ops::Buffer k_, v_;
};

class Qwen3Model final : public EmbeddingModel {
 public:
  // Reads and shape-checks every tensor `config` implies from `store` onto ctx's device, and allocates the
  // workspace for batches of up to `workspace_tokens` tokens, once. `store` and `ctx` must outlive the model
  // (the CPU reads the embedding table straight from the mapping).
  static StatusOr<std::unique_ptr<Qwen3Model>> load(const ModelConfig& config, const WeightStore& store,
                                                    const ops::DeviceContext& ctx, size_t workspace_tokens);

  // Bytes ctx's memory will hold once load() has run with `workspace_tokens`: the weights as the uploader keeps
  // them and the workspace. Computed from config.json and the embedding table's rows alone, before a weight is
  // read, so the engine can refuse a model that does not fit with a message instead of dying in an allocation.
  struct ResidentBytes {
    size_t weights = 0;
    size_t workspace = 0;
  };
  static ResidentBytes resident_bytes(const ModelConfig& config, int64_t vocab_rows, DType stored,
                                      const ops::DeviceContext& ctx,
                                      size_t workspace_tokens);

  Status forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                 bool normalize, std::span<float> out) override;
  bool takes_chunks(Pooling pooling) const override;
  StatusOr<std::unique_ptr<SequenceCache>> new_sequence_cache(size_t tokens) override;
  Status forward_chunk(std::span<const int32_t> token_ids, SequenceCache& cache, Pooling pooling, bool normalize,
                       std::span<float> out) override;
  void set_intermediate_sink(IntermediateSink sink) override { sink_ = std::move(sink); }
  Status record_query_graphs(Pooling pooling, bool normalize) override;
  // Batches whose bucket (model/graph_buckets.h) holds at most `tokens` tokens run as that bucket. load() sets the
  // context's graph limit (0 where it records none: the batch runs as it is); tests set it on the CPU too, where
  // the padding must change no vector either.
  void pad_batches_up_to(int64_t tokens);
  int64_t padding_tokens() const { return padding_tokens_; }  // tokens of padding run so far

  int64_t vocab_rows() const override { return embed_tokens_.tensor.rows; }
  DType stored_dtype() const override { return stored_dtype_; }
  size_t weight_bytes() const override { return weight_bytes_; }
  size_t workspace_bytes() const override { return workspace_bytes_; }
  size_t workspace_tokens() const override { return workspace_tokens_; }

 private:
  // The rows a layer works on: every token, or from the last layer's queries on only the pooled rows.
  struct Rows {
    ops::SequenceRows rows;      // offsets and positions of the rows carried
    ops::Index plan;             // attention_plan of rows.offsets, staged
    ops::RotaryTable rotary;     // the rows' angles
  };
  // Where a layer's keys and values go and which ones its attention reads.
  struct KeyValueRows {
    Qwen3SequenceCache* cache = nullptr;  // a chunk's input, holding its earlier chunks' rows; null: the workspace
    int64_t start = 0;                    // the chunk's first position: rows of the cache before it
    ops::Index offsets;                   // int32 [n_seqs + 1]: each sequence's key and value rows
  };
  Qwen3Model(const ModelConfig& config, const ops::DeviceContext& ctx)
      : config_(config), ctx_(ctx), shard_(Qwen3Shard::of(config, ctx.rank(), ctx.world_size())) {}
  // The forward pass of forward() and forward_chunk(): positions_ already holds every row's position; with
  // `cache`, the batch is one chunk of its input, and `out` is empty unless it is the input's last.
  Status run(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Qwen3SequenceCache* cache,
             Pooling pooling, bool normalize, std::span<float> out);
  // `query_rows`: the graphs' limit on a query's tokens (0: none recorded), whose GEMMs warm beside the copy.
  Status load_weights(const WeightStore& store, int64_t query_rows);
  Status allocate(size_t workspace_tokens);
  // The buckets record_query_graphs records a query in (16, 32, 48 and 64 tokens), those of at most `limit` tokens.
  static std::vector<int32_t> query_buckets(int64_t limit);
  // Each projection's GEMM once at every query bucket's rows, on zeros, its products dropped: see load_weights.
  Status warm_query_gemms(int64_t limit) const;
  // One Qwen3DecoderLayer over the residual stream x, whose input_layernorm h already holds; ends with
  // next_norm (the next layer's input_layernorm, or the final norm) applied to its output, in h. With `pooled`
  // set (the last layer under last-token or CLS pooling) only those rows go on past the key/value projections:
  // the other rows' outputs feed nothing. With `keys_only` (the last layer of a chunk before its input's last) the
  // layer stops after its keys and values. `next_is_gemm`: another layer follows (under fp8 its norm then
  // quantises h for that layer's k|v|q GEMM).
  Status decoder_layer(int layer, const Qwen3LayerWeights& w, const ops::Tensor& next_norm, const Rows& all,
                       const KeyValueRows& kv, const Rows* pooled, const ops::Index& pooled_rows, bool keys_only,
                       bool next_is_gemm);
  // The rows one pass of a layer's blocks works on: the whole batch, or one of its halves.
  struct Part {
    const Rows* rows = nullptr;  // its query rows: offsets from its first row, positions, plan, angles
    KeyValueRows kv;             // where its keys and values go and which ones attention reads
    int64_t begin = 0;           // its first row in the workspace
    int64_t kv_begin = 0;        // without a cache: the workspace row kv.offsets count from
  };
  // A layer from its input (h, normed) to o_proj's output for the part's rows, in `partial` (this rank's share,
  // where partial_for_sum puts it). pooled, pooled_rows and keys_only as in
  // decoder_layer (a whole batch only); h_quantized: under fp8, the scratch already holds h quantised.
  // reduce: the block ends with the all-reduce of `partial` into h (row_parallel); else the caller sums it.
  Status attention_block(int layer, const Qwen3LayerWeights& w, const Part& part, const Rows* pooled,
                         const ops::Index& pooled_rows, bool keys_only, bool h_quantized, bool reduce,
                         ops::Tensor& x, ops::Tensor& h, ops::Tensor& partial);
  // The residual add and post_attention_layernorm of h (o_proj's output, summed; or, with attention_partial, of
  // the sum of that partial over the ranks, fused), then the MLP into `partial` (where partial_for_sum puts it if
  // empty), for rows [begin, begin + h.rows) grouped by `groups`.
  Status mlp_block(int layer, const Qwen3LayerWeights& w, int64_t begin, const ops::Index& groups, bool reduce,
                   ops::Tensor& x, ops::Tensor& h, ops::Tensor& partial, const ops::Tensor* attention_partial = nullptr);
  // Where o_proj's or down_proj's product for rows [begin, begin + m) waits for its sum: h itself (one rank, or an
  // in-place sum), else partial_, in the half after the last sum's where the group reads peers (ops/all_reduce.h).
  ops::Tensor partial_for_sum(int64_t begin, int64_t m, const ops::Tensor& h);
  // y = x · wᵀ for o_proj or down_proj (row-parallel with several ranks); with `sum`, then the all-reduce of y into
  // *sum — on a rank of several, in ctx's tp_gemm_chunks() pieces of rows, each piece's sum started as soon as its
  // GEMM is issued so the link carries one piece while the GPU computes the next (at most kMaxGemmChunks).
  static constexpr size_t kMaxGemmChunks = 8;
  Status row_parallel(const ops::Tensor& x, const ops::Tensor& w, const ops::Tensor& y, const ops::Index& groups,
                      bool x_quantized, const ops::Tensor* sum);
  // Tensor parallelism's overlap: how a batch's rows split in two (see run()).
  struct HalfRows {
    int32_t split = 0;                   // the second half's first row
    std::vector<int32_t> a_offsets;      // the first half's sequences (the last one cut at `split`)
    std::vector<int32_t> b_offsets;      // the second half's, from `split`
    std::vector<int32_t> b_kv_offsets;   // the second half's keys, from b_kv_begin
    int64_t b_kv_begin = 0;              // the start of the sequence holding row `split`
  };
  static HalfRows split_in_halves(std::span<const int32_t> seq_offsets);
  // Every layer but the last, each as two halves of the batch's rows on one stream: A's attention, B's attention,
  // A's MLP, B's MLP, each sum started as soon as its half's GEMM is issued and waited for only where that half
  // next needs it, so the link carries one half's sums while the GPU computes the other half. Ends with h normed
  // for the last layer, which runs whole.
  Status layers_in_halves(const std::array<Part, 2>& halves);
  ops::Tensor fp8_scratch() const;  // fp8 weights: where GEMM inputs are quantised
  void trace(const char* name, int layer, const ops::Tensor& t) const {
    if (sink_) sink_(name, layer, t);
  }

  ModelConfig config_;
  const ops::DeviceContext& ctx_;
  Qwen3Shard shard_;  // the heads and MLP columns this rank holds (all of them alone)
  DType stored_dtype_ = DType::kBF16;
  ops::Weight embed_tokens_;  // [vocab, hidden]
  std::vector<Qwen3LayerWeights> layers_;
  ops::Weight norm_;          // [1, hidden]
  ops::Weight inv_freq_;      // f32 [1, head_dim / 2]
  size_t weight_bytes_ = 0;

  // Workspace for workspace_tokens_ rows (n), in the context's dtype unless noted.
  size_t workspace_tokens_ = 0;
  size_t workspace_bytes_ = 0;
  ops::Buffer x_, x_pooled_, h_;  // [n, hidden]: residual stream, the pooled rows' residual, a block's input/output
  ops::Buffer kvq_;               // [n, (2 * kv_heads + heads) * head_dim]: k | v | q of every row
  ops::Buffer attn_;              // [n, heads * head_dim]
  ops::Buffer gate_up_;           // [n, 2 * intermediate]
  ops::Buffer act_;               // [n, intermediate]
  ops::Buffer pooled_out_;        // f32 [n, hidden]: one vector per sequence, at most one per token
  ops::Buffer partial_;           // [n, hidden] (two in a group that reads peers): o_proj's and down_proj's partials
  ops::Buffer rotary_;            // the backend's RoPE tables for every row and for the pooled rows
  ops::Buffer index_;             // the batch's int32 arrays on the device
  ops::Buffer fp8_act_;           // fp8 weights: a GEMM input as e4m3 [n, k] and its per-token scales
  ops::IndexStaging staging_;
  std::vector<int32_t> positions_, pooled_rows_, pooled_positions_, identity_offsets_, kv_offsets_;

  // The current batch's residual stream and block buffer (they swap at the last layer's gather).
  ops::Tensor x, h;
  bool h_quantized_ = false;  // fp8: fp8_act_ holds h quantised (the previous layer's last norm wrote it)
  IntermediateSink sink_;
  BucketedBatch bucketed_;    // the current batch padded to its bucket
  int64_t bucket_limit_ = 0;  // batches whose bucket holds at most this many tokens are padded to it
  int64_t padding_tokens_ = 0;
  bool record_now_ = false;   // record_query_graphs: the next run records its graph at once
};

}  // namespace embedserve
