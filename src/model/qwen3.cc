// Qwen3Model's forward pass as calls to the op API; reads top to bottom like transformers' modeling_qwen3.py
// (Qwen3Model.forward → Qwen3DecoderLayer → Qwen3Attention / Qwen3MLP), padding-free, on any backend.
#include "model/qwen3.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <thread>

#include "model/graph_buckets.h"
#include "model/pooling.h"
#include "ops/all_reduce.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/gather_rows.h"
#include "ops/graph.h"
#include "ops/linear.h"
#include "ops/pool.h"
#include "ops/rms_norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"
#include "ops/weight_upload.h"

namespace embedserve {
namespace {

ops::HostMatrix host_matrix(const TensorView& t) {
  const int64_t rows = t.shape.size() == 2 ? t.shape[0] : 1;
  const int64_t cols = t.shape.empty() ? 1 : t.shape.back();
  return {t.data, t.dtype, rows, cols, 0, t.scale, t.scale_dtype, t.scale_count};
}

// This rank's share of a checkpoint tensor: all of it, rows [begin, begin + count) (a column-parallel weight's
// output rows) or columns [begin, begin + count) (a row-parallel weight's input columns).
struct Slice {
  enum Kind { kWhole, kRows, kColumns } kind = kWhole;
  int64_t begin = 0, count = 0;
};

// Tensors of the shapes given from the store, checked, sliced to this rank's share, and queued on `up` as one
// weight (parts stacked by rows: k|v|q, gate|up). Slices are views of the mapping: no rank copies a whole tensor.
struct Part {
  std::string name;
  std::vector<int64_t> shape;
  Slice slice = {};
};
StatusOr<ops::Weight> weight(ops::WeightUploader& up, const WeightStore& store, std::initializer_list<Part> names) {
  std::vector<ops::HostMatrix> parts;
  std::string stored_names, files;  // as the checkpoint spells them, for errors
  for (const auto& [name, shape, slice] : names) {
    EMBEDSERVE_ASSIGN_OR_RETURN(TensorView t, store.get(name, shape));
    const ops::HostMatrix whole = host_matrix(t);
    parts.push_back(slice.kind == Slice::kRows      ? whole.row_slice(slice.begin, slice.count)
                    : slice.kind == Slice::kColumns ? whole.column_slice(slice.begin, slice.count)
                                                    : whole);
    stored_names += (stored_names.empty() ? "" : " + ") + t.name;
    if (files.find(t.file) == std::string::npos) files += (files.empty() ? "" : ", ") + t.file;
  }
  return up.add(parts, stored_names, files);
}

}  // namespace

Qwen3Shard Qwen3Shard::of(const ModelConfig& c, int rank, int ranks) {
  Qwen3Shard s;
  s.rank = rank;
  s.ranks = ranks;
  s.heads = c.num_attention_heads / ranks;
  s.kv_heads = c.num_key_value_heads / ranks;
  s.intermediate = c.intermediate_size / ranks;
  return s;
}

Status Qwen3Shard::check_ranks(const ModelConfig& c, int ranks) {
  if (ranks < 1) return invalid_argument("--tp must be 1 or more");
  if (c.num_attention_heads % ranks == 0 && c.num_key_value_heads % ranks == 0 && c.intermediate_size % ranks == 0)
    return Status();
  std::string fit;
  for (int t = 1; t <= std::max(1, c.num_key_value_heads); ++t)
    if (c.num_attention_heads % t == 0 && c.num_key_value_heads % t == 0 && c.intermediate_size % t == 0)
      fit += (fit.empty() ? "" : ", ") + std::to_string(t);
  return invalid_argument("--tp " + std::to_string(ranks) + ": this model's " + std::to_string(c.num_attention_heads) +
                          " attention heads, " + std::to_string(c.num_key_value_heads) +
                          " key/value heads and intermediate size " + std::to_string(c.intermediate_size) +
                          " do not divide among " + std::to_string(ranks) + " ranks (each rank holds whole heads); "
                          "use --tp " + fit);
}

StatusOr<std::unique_ptr<Qwen3Model>> Qwen3Model::load(const ModelConfig& config, const WeightStore& store,
                                                       const ops::DeviceContext& ctx, size_t workspace_tokens) {
  const ModelConfig& c = config;
  if (c.num_hidden_layers < 1 || c.hidden_size < 1 || c.intermediate_size < 1 || c.head_dim < 2 ||
      c.head_dim % 2 != 0 || c.num_key_value_heads < 1 || c.num_attention_heads % c.num_key_value_heads != 0)
    return invalid_argument("config.json describes an impossible Qwen3 shape (layers " +
                            std::to_string(c.num_hidden_layers) + ", heads " + std::to_string(c.num_attention_heads) +
                            ", kv heads " + std::to_string(c.num_key_value_heads) + ", head_dim " +
                            std::to_string(c.head_dim) + ")");
  EMBEDSERVE_RETURN_IF_ERROR(Qwen3Shard::check_ranks(c, ctx.world_size()));
  const Qwen3Shard shard = Qwen3Shard::of(c, ctx.rank(), ctx.world_size());
  const ops::AttentionShape shape{shard.heads, shard.kv_heads, c.head_dim, 1.0f};
  EMBEDSERVE_RETURN_IF_ERROR(ops::check_attention_shape(ctx, shape));
  if (workspace_tokens == 0) return invalid_argument("the workspace must hold at least one token");
  {
    const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
    const int64_t q_dim = int64_t{c.num_attention_heads} * hd, kv_dim = int64_t{c.num_key_value_heads} * hd;
    const std::pair<const char*, std::array<int64_t, 2>> projections[] = {
        {"k_proj/v_proj", {kv_dim, H}}, {"q_proj", {q_dim, H}}, {"o_proj", {H, q_dim}},
        {"gate_proj/up_proj", {I, H}},  {"down_proj", {H, I}}};
    for (const auto& [name, shape] : projections)
      EMBEDSERVE_RETURN_IF_ERROR(ops::check_linear_shape(ctx, shape[0], shape[1], name));
  }
  std::unique_ptr<Qwen3Model> m(new Qwen3Model(config, ctx));
  const int64_t graph_tokens = std::min<int64_t>(static_cast<int64_t>(ctx.graph_max_tokens()), kMaxBucketTokens);
  EMBEDSERVE_RETURN_IF_ERROR(
      m->load_weights(store, std::min<int64_t>(graph_tokens, static_cast<int64_t>(workspace_tokens))));
  EMBEDSERVE_RETURN_IF_ERROR(m->allocate(workspace_tokens));
  m->pad_batches_up_to(graph_tokens);
  return m;
}

Status Qwen3Model::load_weights(const WeightStore& store, int64_t query_rows) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q_dim = int64_t{c.num_attention_heads} * hd, kv_dim = int64_t{c.num_key_value_heads} * hd;
  // This rank's share: its heads' rows of q/k/v and columns of o_proj, its MLP columns' rows of gate/up and
  // columns of down_proj (everything with one rank). Norms and the embedding table are whole on every rank.
  const int64_t q_rows = shard_.q_dim(hd), kv_rows = shard_.kv_dim(hd), i_rows = shard_.intermediate;
  const Slice q_part{Slice::kRows, shard_.rank * q_rows, q_rows}, kv_part{Slice::kRows, shard_.rank * kv_rows, kv_rows};
  const Slice mlp_part{Slice::kRows, shard_.rank * i_rows, i_rows};
  const Slice o_cols{Slice::kColumns, shard_.rank * q_rows, q_rows}, down_cols{Slice::kColumns, shard_.rank * i_rows, i_rows};

  // The embedding table's rows are the vocabulary the engine checks ids against (vocab_size in config.json may
  // round up past them, or, for the 4B and 8B, stop short of the tokenizer's last ids).
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView emb, store.get("embed_tokens.weight"));
  if (emb.shape.size() != 2 || emb.shape[0] < 1 || emb.shape[1] != H)
    return invalid_argument("tensor " + emb.name + " in " + emb.file + " should have shape [vocab, " +
                            std::to_string(H) + "]");
  stored_dtype_ = emb.dtype;
  // Every weight is allocated and queued first, then copied at once by several threads (start-up is mostly this
  // copy); each value is checked finite on the way.
  ops::WeightUploader up(ctx_);
  up.on_copied([&store](const void* p, size_t bytes) { store.release(p, bytes); });
  EMBEDSERVE_ASSIGN_OR_RETURN(embed_tokens_, up.add_table(host_matrix(emb), emb.name, emb.file));

  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    Qwen3LayerWeights& w = layers_[static_cast<size_t>(l)];
    const std::string p = "layers." + std::to_string(l) + ".";
    EMBEDSERVE_ASSIGN_OR_RETURN(w.input_layernorm, weight(up, store, {{p + "input_layernorm.weight", {H}}}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.kvq_proj, weight(up, store,
                                                   {{p + "self_attn.k_proj.weight", {kv_dim, H}, kv_part},
                                                    {p + "self_attn.v_proj.weight", {kv_dim, H}, kv_part},
                                                    {p + "self_attn.q_proj.weight", {q_dim, H}, q_part}}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.q_norm, weight(up, store, {{p + "self_attn.q_norm.weight", {hd}}}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.k_norm, weight(up, store, {{p + "self_attn.k_norm.weight", {hd}}}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.o_proj, weight(up, store, {{p + "self_attn.o_proj.weight", {H, q_dim}, o_cols}}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.post_attention_layernorm,
                                weight(up, store, {{p + "post_attention_layernorm.weight", {H}}}));
    // gate_proj and up_proj stacked into one [2I, H] matrix: one GEMM, whose output rows hold gate then up.
    EMBEDSERVE_ASSIGN_OR_RETURN(w.gate_up_proj,
                                weight(up, store, {{p + "mlp.gate_proj.weight", {I, H}, mlp_part},
                                                   {p + "mlp.up_proj.weight", {I, H}, mlp_part}}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.down_proj, weight(up, store, {{p + "mlp.down_proj.weight", {H, I}, down_cols}}));
    for (const ops::Weight* t : {&w.input_layernorm, &w.kvq_proj, &w.q_norm, &w.k_norm,
                                 &w.o_proj, &w.post_attention_layernorm, &w.gate_up_proj, &w.down_proj})
      weight_bytes_ += t->memory.bytes();
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(norm_, weight(up, store, {{"norm.weight", {H}}}));
  // The query graphs' first GEMMs of each shape cost far more than their runs: cuBLAS loads its kernels and picks
  // one per shape, and the projections tuned at a query's rows time their candidates (0.13–0.37 s of start-up on an
  // H200 for the 4B's and 8B's largest, docs/PERFORMANCE.md). Those need the weights' addresses and shapes, not
  // their values, so they run on a thread of their own while the weights copy, and record_query_graphs then finds
  // them done. Until finish() returns, those GEMMs read weights still arriving: their products are dropped.
  Status warmed;
  std::thread warm;
  if (!query_buckets(query_rows).empty())  // none where graphs do not record (query_rows 0)
    warm = std::thread([&] { warmed = warm_query_gemms(query_rows); });
  const Status copied = up.finish();
  if (warm.joinable()) warm.join();
  EMBEDSERVE_RETURN_IF_ERROR(copied);  // a corrupt weight's message before any error of the warm-up
  EMBEDSERVE_RETURN_IF_ERROR(warmed);

  // Qwen3RotaryEmbedding: inv_freq = 1 / base^(arange(0, dim, 2).float() / dim), every step in float32.
  std::vector<float> inv_freq(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i)
    inv_freq[static_cast<size_t>(i)] =
        1.0f / std::pow(static_cast<float>(c.rope_theta), static_cast<float>(2 * i) / static_cast<float>(hd));
  EMBEDSERVE_ASSIGN_OR_RETURN(inv_freq_, ops::upload_f32(ctx_, inv_freq, "inv_freq"));
  weight_bytes_ += embed_tokens_.memory.bytes() + norm_.memory.bytes();
  return Status();
}

namespace {

// Rows [begin, begin + count) of a batch's index (positions) or RoPE angles.
ops::Index slice(const ops::Index& index, int64_t begin, int64_t count) {
  return {index.host.subspan(static_cast<size_t>(begin), static_cast<size_t>(count)),
          index.device ? index.device + begin : nullptr};
}
ops::RotaryTable slice(const ops::RotaryTable& t, int64_t begin, int64_t count) {
  ops::RotaryTable s = t;
  s.positions = slice(t.positions, begin, count);
  const int64_t half = t.head_dim / 2;  // cos and sin are [rows, head_dim / 2]
  s.cos = t.cos + begin * half;
  s.sin = t.sin + begin * half;
  return s;
}

}  // namespace

Qwen3Model::HalfRows Qwen3Model::split_in_halves(std::span<const int32_t> seq_offsets) {
  const int32_t n = seq_offsets.back();
  HalfRows h;
  // Near the middle, on a multiple of 64 rows where the batch allows (the GEMMs' tiles), never at either end.
  h.split = std::clamp((n / 2 + 63) / 64 * 64, 1, n - 1);
  // The first half: every sequence that starts before the split, the last of them cut there.
  h.a_offsets = {0};
  for (size_t s = 1; s < seq_offsets.size() && seq_offsets[s] < h.split; ++s) h.a_offsets.push_back(seq_offsets[s]);
  h.a_offsets.push_back(h.split);
  // The second: from the sequence holding row `split` on, its queries from the split and its keys from its start.
  const size_t first = static_cast<size_t>(
      std::upper_bound(seq_offsets.begin(), seq_offsets.end(), h.split) - seq_offsets.begin() - 1);
  h.b_kv_begin = seq_offsets[first];
  h.b_offsets = {0};
  h.b_kv_offsets = {0};
  for (size_t s = first + 1; s < seq_offsets.size(); ++s) {
    h.b_offsets.push_back(seq_offsets[s] - h.split);
    h.b_kv_offsets.push_back(seq_offsets[s] - static_cast<int32_t>(h.b_kv_begin));
  }
  return h;
}

namespace {

// The workspace's buffers for batches of n tokens, in one list that allocate() and resident_bytes() share.
struct WorkspacePart {
  size_t bytes;
  const char* what;
};
constexpr size_t kWorkspaceParts = 12;  // the entries of workspace_parts(), the buffers of allocate()

// Where a rank of several puts o_proj's and down_proj's partial sums until their all-reduce: `copies` buffers of
// [n, hidden] in `dtype`. f32 on a bf16 rank that reduces in f32 (one rounding, after the sum); in a group that reads
// peers always, in the reduce dtype, two of them (the halves sums alternate between: ops/all_reduce.h); else none
// (0 copies: in h itself).
struct PartialSums {
  DType dtype = DType::kF32;
  size_t copies = 0;
};
PartialSums partial_sums(const ops::DeviceContext& ctx) {
  if (ops::reads_peers(ctx)) return {ctx.reduce_dtype(), 2};
  if (ctx.world_size() > 1 && ctx.dtype() != DType::kF32 && ctx.reduce_dtype() == DType::kF32) return {DType::kF32, 1};
  return {};
}

// Sized for this rank's share (Qwen3Shard): its heads' q, k, v and attention output, its MLP columns.
std::array<WorkspacePart, kWorkspaceParts> workspace_parts(const ModelConfig& c, const ops::DeviceContext& ctx, size_t n) {
  const Qwen3Shard shard = Qwen3Shard::of(c, ctx.rank(), ctx.world_size());
  const size_t H = c.hidden_size, I = static_cast<size_t>(shard.intermediate);
  const size_t q_dim = static_cast<size_t>(shard.q_dim(c.head_dim));
  const size_t kv_dim = static_cast<size_t>(shard.kv_dim(c.head_dim));
  const size_t t = dtype_size(ctx.dtype());
  const PartialSums partials = partial_sums(ctx);
  return {{
      {n * H * t, "the residual stream"},
      {n * H * t, "the pooled rows"},
      {n * H * t, "hidden states"},
      {n * (2 * kv_dim + q_dim) * t, "keys, values and queries"},
      {n * q_dim * t, "attention output"},
      {n * 2 * I * t, "the MLP's gate and up projections"},
      {n * I * t, "the MLP's activations"},
      {n * H * 4, "output vectors"},
      {2 * ops::rotary_table_bytes(ctx, static_cast<int64_t>(n), c.head_dim), "RoPE tables"},
      // ids, positions [n]; offsets [n+1]; plan ≤ 2(n/32 + n); pooled rows, positions [n]; offsets [n+1]; plan 2n;
      // a chunk's kv offsets [2]
      // tensor parallelism's halves: offsets, key offsets and plans of each half ≤ 6n + 12
      {(11 * n + 4 + (ctx.world_size() > 1 ? 6 * n + 12 : 0)) * sizeof(int32_t), "batch indices"},
      {partials.copies * n * H * dtype_size(partials.dtype), "tensor-parallel partial sums"},
      // fp8 weights only (0 bytes otherwise): a GEMM input quantised per token, the widest being the MLP's
      {ops::linear_scratch_bytes(ctx, static_cast<int64_t>(n), static_cast<int64_t>(std::max({H, q_dim, I}))),
       "fp8 activations"},
  }};
}

}  // namespace

Qwen3Model::ResidentBytes Qwen3Model::resident_bytes(const ModelConfig& c, int64_t vocab_rows, DType stored,
                                                     const ops::DeviceContext& ctx, size_t workspace_tokens) {
  using ops::WeightUploader;
  // This rank's share (everything with one rank): the estimate is per context, as the memory check is.
  const Qwen3Shard shard = Qwen3Shard::of(c, ctx.rank(), ctx.world_size());
  const int64_t H = c.hidden_size, I = shard.intermediate, hd = c.head_dim;
  const int64_t q_dim = shard.q_dim(hd), kv_dim = shard.kv_dim(hd);
  ResidentBytes r;
  // As load_weights adds them: per layer two norms [1, H], q/k norms [1, hd], k|v|q stacked, o, gate|up stacked,
  // down; the embedding table; the final norm.
  const auto held = [&](int64_t rows, int64_t cols, bool table = false) {
    return WeightUploader::held_bytes(ctx, rows, cols, stored, table);
  };
  const size_t layer = 2 * held(1, H) + 2 * held(1, hd) + held(2 * kv_dim + q_dim, H) + held(H, q_dim) +
                       held(2 * I, H) + held(H, I);
  r.weights = static_cast<size_t>(c.num_hidden_layers) * layer + held(vocab_rows, H, /*table=*/true) + held(1, H);
  for (const WorkspacePart& p : workspace_parts(c, ctx, workspace_tokens)) r.workspace += p.bytes;
  return r;
}

Status Qwen3Model::allocate(size_t n) {
  workspace_tokens_ = n;
  ops::Buffer* const buffers[kWorkspaceParts] = {&x_, &x_pooled_, &h_, &kvq_, &attn_, &gate_up_,
                                                 &act_, &pooled_out_, &rotary_, &index_, &partial_, &fp8_act_};
  const auto parts = workspace_parts(config_, ctx_, n);
  for (size_t i = 0; i < kWorkspaceParts; ++i) {
    if (parts[i].bytes == 0) continue;  // a part this rank does not use
    EMBEDSERVE_ASSIGN_OR_RETURN(*buffers[i], ops::Buffer::allocate(ctx_, parts[i].bytes, parts[i].what));
    workspace_bytes_ += parts[i].bytes;
  }
  // Where the group reads peers, the other ranks read these partial sums straight from this GPU.
  if (partial_.data()) EMBEDSERVE_RETURN_IF_ERROR(ops::share_partials(ctx_, partial_.data(), partial_.bytes()));
  return Status();
}

ops::Tensor Qwen3Model::partial_for_sum(int64_t begin, int64_t m, const ops::Tensor& h) {
  if (!partial_.data()) return h;
  // In a group that reads peers, the half after the last sum's (ops/all_reduce.h); else the whole buffer.
  const size_t offset = ops::next_partial_half(ctx_) * (partial_.bytes() / 2);
  return ops::Tensor::matrix(static_cast<char*>(partial_.data()) + offset, partial_sums(ctx_).dtype, begin + m,
                             config_.hidden_size)
      .rows_range(begin, m);
}

bool Qwen3Model::takes_chunks(Pooling pooling) const { return pools_from_last_chunk(pooling); }

StatusOr<std::unique_ptr<SequenceCache>> Qwen3Model::new_sequence_cache(size_t tokens) {
  const ModelConfig& c = config_;
  const size_t kv_dim = static_cast<size_t>(shard_.kv_dim(c.head_dim));  // this rank's key/value heads
  const size_t bytes = size_t(c.num_hidden_layers) * tokens * kv_dim * dtype_size(ctx_.dtype());
  const std::string what = "the keys and values of a " + std::to_string(tokens) + "-token input embedded in chunks (" +
                           std::to_string((2 * bytes) >> 20) + " MiB for k and v of " +
                           std::to_string(c.num_hidden_layers) + " layers)";
  // Where the kernel overcommits, a CPU allocation past the memory there is succeeds and the process is killed
  // later, when the chunks touch its pages: refuse it now, while it is a message.
  if (const StatusOr<size_t> available = ops::available_memory(ctx_); available.ok() && 2 * bytes > *available)
    return resource_exhausted("out of memory for " + what + ": " + std::to_string(*available >> 20) +
                              " MiB are available on " + ctx_.description());
  auto k = ops::Buffer::allocate(ctx_, bytes, what);
  if (!k.ok()) return k.status();
  auto v = ops::Buffer::allocate(ctx_, bytes, what);
  if (!v.ok()) return v.status();
  return std::unique_ptr<SequenceCache>(
      new Qwen3SequenceCache(tokens, static_cast<int64_t>(kv_dim), std::move(*k), std::move(*v)));
}

ops::Tensor Qwen3SequenceCache::rows(const ops::Buffer& buffer, DType dtype, int layer, int64_t begin,
                                     int64_t count) const {
  const int64_t row = static_cast<int64_t>(capacity_) * layer + begin;
  return ops::Tensor::matrix(static_cast<char*>(buffer.data()) + row * kv_dim_ * int64_t(dtype_size(dtype)), dtype,
                             count, kv_dim_);
}

Status Qwen3Model::forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                           bool normalize, std::span<float> out) {
  const int64_t n = static_cast<int64_t>(token_ids.size());
  const int64_t n_seqs = static_cast<int64_t>(seq_offsets.size()) - 1;
  if (n_seqs < 1 || n < 1 || seq_offsets.front() != 0 || seq_offsets.back() != n ||
      static_cast<int64_t>(out.size()) != n_seqs * config_.hidden_size || static_cast<size_t>(n) > workspace_tokens_)
    return internal_error("Qwen3Model::forward: batch shape does not match its offsets, output or workspace");
  // A small batch runs as its bucket, padded with sequences of its own (model/graph_buckets.h), so that one
  // recorded graph serves every batch of that shape; `out` still receives only the batch's own vectors.
  GraphBucket bucket;
  if (!sink_ && graph_bucket(n, n_seqs, bucket_limit_, &bucket) && bucket.tokens > n) {
    pad_to_bucket(token_ids, seq_offsets, bucket, /*pad_id=*/0, &bucketed_);
    padding_tokens_ += bucket.tokens - n;
    token_ids = bucketed_.token_ids;
    seq_offsets = bucketed_.seq_offsets;
  }
  // Positions restart at 0 in every sequence (what position_ids = arange(len) is per unpadded row).
  positions_.resize(token_ids.size());
  for (size_t s = 0; s + 1 < seq_offsets.size(); ++s)
    for (int32_t r = seq_offsets[s]; r < seq_offsets[s + 1]; ++r) positions_[r] = r - seq_offsets[s];
  return run(token_ids, seq_offsets, nullptr, pooling, normalize, out);
}

void Qwen3Model::pad_batches_up_to(int64_t tokens) {
  bucket_limit_ = std::min(tokens, static_cast<int64_t>(workspace_tokens_));
}

std::vector<int32_t> Qwen3Model::query_buckets(int64_t limit) {
  std::vector<int32_t> buckets;
  for (int32_t tokens = 16; tokens <= 64 && tokens <= limit; tokens += 16) buckets.push_back(tokens);
  return buckets;
}

Status Qwen3Model::warm_query_gemms(int64_t limit) const {
  const std::vector<int32_t> buckets = query_buckets(limit);
  const ops::ScopedDevice on_device(ctx_);  // a thread of its own starts on device 0
  EMBEDSERVE_RETURN_IF_ERROR(on_device.status());
  // A query's GEMMs as decoder_layer runs them (every layer's projections have the first one's shapes): k|v|q, o,
  // gate|up and down over the bucket's rows; under last-token pooling the last layer's k|v there, and its q, o,
  // gate|up and down over the pooled rows alone (the query's, and a padding sequence's in a bucket it does not fill).
  const Qwen3LayerWeights& first = layers_.front();
  const int64_t kv_dim = shard_.kv_dim(config_.head_dim);
  const ops::Tensor& kvq = first.kvq_proj.tensor;
  std::vector<std::pair<ops::Tensor, int64_t>> gemms;  // (w, rows of x)
  for (const int32_t tokens : buckets)
    for (const ops::Tensor& w : {kvq, kvq.rows_range(0, 2 * kv_dim), first.o_proj.tensor, first.gate_up_proj.tensor,
                                 first.down_proj.tensor})
      gemms.emplace_back(w, tokens);
  for (const int64_t pooled : {1, 2})
    for (const ops::Tensor& w : {kvq.rows_range(2 * kv_dim, kvq.rows - 2 * kv_dim), first.o_proj.tensor,
                                 first.gate_up_proj.tensor, first.down_proj.tensor})
      gemms.emplace_back(w, pooled);
  int64_t max_k = 0, max_n = 0;
  for (const auto& [w, rows] : gemms) {
    max_k = std::max(max_k, w.cols);
    max_n = std::max(max_n, w.rows);
  }
  const int64_t max_rows = buckets.back();
  const DType dtype = ctx_.dtype();
  const size_t in_bytes = static_cast<size_t>(max_rows * max_k) * dtype_size(dtype);
  const size_t out_bytes = static_cast<size_t>(max_rows * max_n) * dtype_size(dtype);
  const size_t scratch_bytes = ops::linear_scratch_bytes(ctx_, max_rows, max_k);  // fp8: x's codes and scales
  EMBEDSERVE_ASSIGN_OR_RETURN(ops::Buffer in, ops::Buffer::allocate(ctx_, in_bytes, "the query GEMMs' first input"));
  EMBEDSERVE_ASSIGN_OR_RETURN(ops::Buffer out, ops::Buffer::allocate(ctx_, out_bytes, "the query GEMMs' first output"));
  ops::Buffer scratch;
  if (scratch_bytes > 0) {
    EMBEDSERVE_ASSIGN_OR_RETURN(scratch, ops::Buffer::allocate(ctx_, scratch_bytes, "the query GEMMs' first scratch"));
  }
  const ops::Tensor scratch_view = scratch.matrix(DType::kF8E4M3, 1, static_cast<int64_t>(scratch_bytes));
  const std::vector<uint8_t> zeros(in_bytes, 0);  // defined inputs: only the weights may still be arriving
  EMBEDSERVE_RETURN_IF_ERROR(ops::copy_bytes_from_host(ctx_, zeros.data(), in.data(), in_bytes));
  for (const auto& [w, rows] : gemms) {
    const int32_t offsets[] = {0, static_cast<int32_t>(rows)};
    EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, in.matrix(dtype, rows, w.cols), w, out.matrix(dtype, rows, w.rows),
                                           ops::Index{offsets, nullptr}, scratch_view));
  }
  return ctx_.synchronize();  // before the buffers go
}

Status Qwen3Model::record_query_graphs(Pooling pooling, bool normalize) {
  if (bucket_limit_ == 0 || !ctx_.records(static_cast<size_t>(bucket_limit_)) || sink_) return Status();
  // One query of up to 64 tokens: the buckets of 16, 32, 48 and 64 tokens, each as a query that fills it (its own
  // shape) and as a shorter one (the query and a padding sequence). Where a projection is tuned at a query's rows
  // (ops/cuda/tuned_gemm.h: at 16 and 32 rows every projection skinny_gemm takes, at 64 the largest), those GEMMs
  // must choose their kernels before the recording fixes them: load_weights had them choose beside the copy
  // (warm_query_gemms), and each bucket still runs once live first, so that no recording depends on that list
  // matching decoder_layer's calls (a few ms). Choosing among cuBLAS's kernels at every projection's query buckets
  // added 0.11 s to the 0.6B's start-up on an H200 for no gain (2026-11-30); cublasGemmEx against skinny_gemm's
  // three block sizes, beside the copy, leaves it at 0.55–0.58 s (2026-12-02).
  std::vector<float> out(static_cast<size_t>(config_.hidden_size));
  const Qwen3LayerWeights& first = layers_.front();
  bool chooses = false;  // whether any projection does (every layer's has the first one's shape)
  for (const ops::Tensor* w : {&first.kvq_proj.tensor, &first.o_proj.tensor, &first.gate_up_proj.tensor,
                               &first.down_proj.tensor})
    chooses = chooses || ops::linear_chooses_kernel(ctx_, *w, 16);
  for (const int32_t bucket_tokens : query_buckets(bucket_limit_)) {
    for (const int32_t query_tokens : {bucket_tokens, bucket_tokens - 1}) {
      const std::vector<int32_t> ids(static_cast<size_t>(query_tokens), 0);
      const int32_t offsets[] = {0, query_tokens};
      if (query_tokens == bucket_tokens && chooses)
        EMBEDSERVE_RETURN_IF_ERROR(forward(ids, offsets, pooling, normalize, out));
      record_now_ = true;
      const Status st = forward(ids, offsets, pooling, normalize, out);
      record_now_ = false;
      EMBEDSERVE_RETURN_IF_ERROR(st);
    }
  }
  return Status();
}

Status Qwen3Model::forward_chunk(std::span<const int32_t> token_ids, SequenceCache& sequence, Pooling pooling,
                                 bool normalize, std::span<float> out) {
  auto* cache = dynamic_cast<Qwen3SequenceCache*>(&sequence);
  const int64_t n = static_cast<int64_t>(token_ids.size());
  if (!cache || !takes_chunks(pooling) || n < 1 || static_cast<size_t>(n) > workspace_tokens_ ||
      cache->processed() + static_cast<size_t>(n) > cache->capacity())
    return internal_error("Qwen3Model::forward_chunk: the chunk does not fit its sequence cache or the workspace");
  const bool last = cache->processed() + static_cast<size_t>(n) == cache->capacity();
  if (last && static_cast<int64_t>(out.size()) != config_.hidden_size)
    return internal_error("Qwen3Model::forward_chunk: the output holds no single vector");
  // The chunk continues its input: positions processed() onwards.
  positions_.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) positions_[r] = static_cast<int32_t>(cache->processed() + static_cast<size_t>(r));
  const int32_t offsets[] = {0, static_cast<int32_t>(n)};
  EMBEDSERVE_RETURN_IF_ERROR(run(token_ids, offsets, cache, pooling, normalize, last ? out : std::span<float>()));
  cache->processed_ += static_cast<size_t>(n);
  return Status();
}

Status Qwen3Model::run(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets,
                       Qwen3SequenceCache* cache, Pooling pooling, bool normalize, std::span<float> out) {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(token_ids.size());
  const int64_t n_seqs = static_cast<int64_t>(seq_offsets.size()) - 1;
  const int64_t H = c.hidden_size;
  // A chunk before its input's last pools nothing: its last layer computes only the keys and values.
  const bool pools = !cache || cache->processed() + static_cast<size_t>(n) == cache->capacity();

  // Under last-token or CLS pooling only one row per sequence is read at the end: its row, its position, and
  // offsets 0, 1, …, n_seqs over the gathered rows.
  pooled_rows_ = pools ? pooled_rows(seq_offsets, pooling) : std::vector<int32_t>();
  const bool gather = !pooled_rows_.empty();
  pooled_positions_.resize(pooled_rows_.size());
  identity_offsets_.resize(static_cast<size_t>(n_seqs) + 1);
  for (size_t s = 0; s < pooled_rows_.size(); ++s) pooled_positions_[s] = positions_[pooled_rows_[s]];
  for (int64_t s = 0; s <= n_seqs; ++s) identity_offsets_[static_cast<size_t>(s)] = static_cast<int32_t>(s);
  // Keys and values per sequence: the batch's own rows, or for a chunk every row of its input so far.
  kv_offsets_.assign(seq_offsets.begin(), seq_offsets.end());
  if (cache) kv_offsets_.back() = static_cast<int32_t>(cache->processed() + static_cast<size_t>(n));

  // Every index array of the batch, in one host-to-device copy.
  staging_.clear();
  const size_t ids_h = staging_.add(token_ids), pos_h = staging_.add(positions_), off_h = staging_.add(seq_offsets);
  const size_t plan_h = staging_.add(ops::attention_plan(ctx_, seq_offsets));
  const size_t prow_h = staging_.add(pooled_rows_), ppos_h = staging_.add(pooled_positions_);
  const size_t ident_h = staging_.add(identity_offsets_);
  const size_t pplan_h = staging_.add(gather ? ops::attention_plan(ctx_, identity_offsets_) : std::vector<int32_t>());
  const size_t kv_h = staging_.add(cache ? std::span<const int32_t>(kv_offsets_) : std::span<const int32_t>());
  // Tensor parallelism: a large batch runs every layer but the last as two halves of its rows, so that one half's
  // all-reduces cross the link while the other half computes (layers_in_halves). Causal attention makes the first
  // half independent of the second; the second's attention reads the first's keys of a sequence split between them.
  const bool in_halves = ctx_.overlaps(static_cast<size_t>(n)) && !cache && !sink_ && n >= 2 && layers_.size() > 1;
  HalfRows halves;
  if (in_halves) halves = split_in_halves(seq_offsets);
  std::array<size_t, 5> half_h{};  // A's offsets and plan, B's offsets, key offsets and plan
  if (in_halves) {
    half_h = {staging_.add(halves.a_offsets), staging_.add(ops::attention_plan(ctx_, halves.a_offsets)),
              staging_.add(halves.b_offsets), staging_.add(halves.b_kv_offsets),
              staging_.add(ops::attention_plan(ctx_, halves.b_offsets))};
  }
  EMBEDSERVE_RETURN_IF_ERROR(staging_.upload(ctx_, index_, "batch indices"));

  Rows all, pooled;
  all.rows = {staging_.get(off_h), staging_.get(pos_h)};
  all.plan = staging_.get(plan_h);
  char* rotary = static_cast<char*>(rotary_.data());
  EMBEDSERVE_ASSIGN_OR_RETURN(all.rotary, ops::rotary_table(ctx_, all.rows.positions, inv_freq_.tensor, c.head_dim, rotary));
  if (gather) {
    pooled.rows = {staging_.get(ident_h), staging_.get(ppos_h)};
    pooled.plan = staging_.get(pplan_h);
    EMBEDSERVE_ASSIGN_OR_RETURN(pooled.rotary,
                                ops::rotary_table(ctx_, pooled.rows.positions, inv_freq_.tensor, c.head_dim,
                                                  rotary + ops::rotary_table_bytes(ctx_, n, c.head_dim)));
  }
  KeyValueRows kv;
  kv.cache = cache;
  kv.start = cache ? static_cast<int64_t>(cache->processed()) : 0;
  kv.offsets = cache ? staging_.get(kv_h) : all.rows.offsets;
  Rows first_half, second_half;
  std::array<Part, 2> parts{};
  if (in_halves) {
    const int64_t m = halves.split;
    first_half.rows = {staging_.get(half_h[0]), slice(all.rows.positions, 0, m)};
    first_half.plan = staging_.get(half_h[1]);
    first_half.rotary = slice(all.rotary, 0, m);
    second_half.rows = {staging_.get(half_h[2]), slice(all.rows.positions, m, n - m)};
    second_half.plan = staging_.get(half_h[4]);
    second_half.rotary = slice(all.rotary, m, n - m);
    parts[0] = Part{&first_half, KeyValueRows{nullptr, 0, first_half.rows.offsets}, 0, 0};
    parts[1] = Part{&second_half, KeyValueRows{nullptr, 0, staging_.get(half_h[3])}, m, halves.b_kv_begin};
  }

  // Everything from here to the pooled vectors is device work on fixed buffers: a small batch replays it as a
  // graph recorded for its shape (the counts below are every value its launches take; the indices staged above
  // are read from device memory when it runs).
  const ops::Tensor vectors = pooled_out_.matrix(DType::kF32, n_seqs, H);
  const auto layers = [&]() -> Status {
    // inputs_embeds = self.embed_tokens(input_ids): x [n, hidden]
    x = x_.matrix(ctx_.dtype(), n, H);
    h = h_.matrix(ctx_.dtype(), n, H);
    EMBEDSERVE_RETURN_IF_ERROR(ops::embedding(ctx_, embed_tokens_.tensor, staging_.get(ids_h), x));
    trace("inp_embd", -1, x);
    // The first layer's input_layernorm; each layer ends with the next one's (or the final norm) fused to its
    // residual add, so h always enters a layer normed.
    EMBEDSERVE_RETURN_IF_ERROR(
        ops::rms_norm(ctx_, x, layers_.front().input_layernorm.tensor, static_cast<float>(c.rms_norm_eps), h));
    h_quantized_ = false;
    size_t first_whole = 0;  // the first layer run over the whole batch at once
    if (in_halves) {
      EMBEDSERVE_RETURN_IF_ERROR(layers_in_halves(parts));
      first_whole = layers_.size() - 1;
    }
    for (size_t l = first_whole; l < layers_.size(); ++l) {
      const bool last = l + 1 == layers_.size();
      const ops::Tensor& next_norm = last ? norm_.tensor : layers_[l + 1].input_layernorm.tensor;
      EMBEDSERVE_RETURN_IF_ERROR(decoder_layer(static_cast<int>(l), layers_[l], next_norm, all, kv,
                                               last && gather ? &pooled : nullptr, staging_.get(prow_h),
                                               last && !pools, /*next_is_gemm=*/!last));
    }
    if (!pools) return Status();

    // h = self.norm(hidden_states) over the rows carried to the end (fused into the last layer's residual add).
    trace("result_norm", -1, h);
    // Pooling (+ Normalize): the mean of each sequence's rows, or of its one carried row.
    EMBEDSERVE_RETURN_IF_ERROR(ops::pool(ctx_, h, gather ? staging_.get(ident_h) : staging_.get(off_h), normalize, vectors));
    return Status();
  };
  // A chunk reads and writes its own sequence cache, whose addresses a recorded graph would keep: it runs live. So
  // does a batch in halves (attention's kernel per half follows where the halves split, which no key names).
  if (sink_ || cache || in_halves || !ctx_.records(static_cast<size_t>(n))) {
    EMBEDSERVE_RETURN_IF_ERROR(layers());
  } else {
    // n and n_seqs below 2^19 (ContextOptions caps graph_max_tokens there), tiles (at most n_seqs + n / 64) below
    // 2^20, attention's kernel below 4: no two shapes share a key. The kernel attention picks by the longest
    // sequence's keys (the pooled rows' call picks by the same keys, or by one under CLS pooling).
    const uint64_t tiles = static_cast<uint64_t>(staging_.get(plan_h).size() / 2);
    const int32_t max_keys = positions_.empty() ? 0 : *std::max_element(positions_.begin(), positions_.end()) + 1;
    const auto kernel = static_cast<uint64_t>(ops::attention_kernel_choice(ctx_, max_keys));
    const uint64_t shape_key = static_cast<uint64_t>(n) << 43 | static_cast<uint64_t>(n_seqs) << 24 | tiles << 4 |
                               kernel << 2 | static_cast<uint64_t>(pooling == Pooling::kMean) << 1 |
                               static_cast<uint64_t>(normalize);
    EMBEDSERVE_RETURN_IF_ERROR(ops::run_recorded(ctx_, shape_key, layers, record_now_));
  }
  if (!pools) return ctx_.synchronize();
  // The batch's own vectors: a bucket's padding sequences come after them.
  return ops::copy_to_host(ctx_, vectors.rows_range(0, static_cast<int64_t>(out.size()) / H), out);
}

ops::Tensor Qwen3Model::fp8_scratch() const {
  return ops::Tensor::matrix(fp8_act_.data(), DType::kF8E4M3, 1, static_cast<int64_t>(fp8_act_.bytes()));
}

Status Qwen3Model::decoder_layer(int layer, const Qwen3LayerWeights& w, const ops::Tensor& next_norm, const Rows& all,
                                 const KeyValueRows& kv, const Rows* pooled, const ops::Index& pooled_rows,
                                 bool keys_only, bool next_is_gemm) {
  const bool fp8 = ctx_.weight_dtype() == DType::kF8E4M3;
  const ops::Tensor scratch = fp8_scratch();
  ops::Tensor partial, down;
  // With several ranks each holds o_proj's columns of its heads (and down_proj's of its MLP columns), and the
  // blocks end with the all-reduce that adds the ranks' products into h (the partials in the reduce dtype, their sum
  // rounded once: ops/all_reduce.h). A group that reads peers adds them inside the residual add and norm that follow instead
  // (ops::all_reduce_add_rms_norm: the sum never goes to memory).
  const bool fused = ops::reads_peers(ctx_);
  EMBEDSERVE_RETURN_IF_ERROR(attention_block(layer, w, Part{&all, kv}, pooled, pooled_rows, keys_only, h_quantized_,
                                             /*reduce=*/!fused, x, h, partial));
  h_quantized_ = false;
  // The last layer of a chunk before its input's last: only its keys and values are read again.
  if (keys_only) return Status();
  if (!fused) trace("attn_out", layer, h);
  EMBEDSERVE_RETURN_IF_ERROR(mlp_block(layer, w, 0, (pooled ? *pooled : all).rows.offsets, /*reduce=*/!fused, x, h,
                                       down, fused ? &partial : nullptr));
  // hidden_states = residual + hidden_states; then the next layer's input_layernorm (or the final norm) of it
  // The next layer's k|v|q GEMM reads h: quantised here, in the same pass (not after the final norm: pooling reads it).
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const ops::Tensor* quantized = fp8 && next_is_gemm ? &scratch : nullptr;
  if (fused) {
    EMBEDSERVE_RETURN_IF_ERROR(ops::all_reduce_add_rms_norm(ctx_, down, x, next_norm, eps, h, quantized));
  } else {
    trace("ffn_out", layer, h);
    EMBEDSERVE_RETURN_IF_ERROR(ops::add_rms_norm(ctx_, x, h, next_norm, eps, h, quantized));
  }
  h_quantized_ = fp8 && next_is_gemm;
  trace("l_out", layer, x);
  return Status();
}

Status Qwen3Model::attention_block(int layer, const Qwen3LayerWeights& w, const Part& part, const Rows* pooled,
                                   const ops::Index& pooled_rows, bool keys_only, bool h_quantized, bool reduce,
                                   ops::Tensor& x, ops::Tensor& h, ops::Tensor& partial) {
  const ModelConfig& c = config_;
  const int64_t hd = c.head_dim;
  const int64_t q_dim = shard_.q_dim(hd), kv_dim = shard_.kv_dim(hd);  // this rank's heads
  const float eps = static_cast<float>(c.rms_norm_eps);
  const DType t = ctx_.dtype();
  const Rows& all = *part.rows;
  const KeyValueRows& kv = part.kv;
  const int64_t n = all.rows.num_rows();  // keys and values always cover every token of the part
  const ops::Index& seqs = all.rows.offsets;
  const int64_t n_kv = kv.start + n;       // keys attention reads: a chunk's earlier chunks' too
  // Where fp8 GEMMs quantise their input (empty without fp8 weights). The ops that produce a GEMM input (the
  // norms fused to the residual adds, SwiGLU) quantise it as they write it, and the GEMM then skips that pass
  // (x_quantized); h arrives quantised when the previous layer's last norm did it (h_quantized).
  const ops::Tensor scratch = fp8_scratch();
  const bool fp8 = ctx_.weight_dtype() == DType::kF8E4M3;
  if (fp8 && !h_quantized) EMBEDSERVE_RETURN_IF_ERROR(ops::quantize_for_linear(ctx_, h, scratch));

  // residual = hidden_states; hidden_states = self.input_layernorm(hidden_states): h arrives normed (see forward)
  trace("attn_norm", layer, h);

  // Qwen3Attention: key_states = k_norm(k_proj(h).view(n, kv_heads, hd)), then RoPE; value_states = v_proj(h);
  // query_states = q_norm(q_proj(h).view(m, heads, hd)), then RoPE. The weight stacks k_proj, v_proj and q_proj
  // by rows: a whole batch gets k|v|q from one GEMM (k, v and q are column views of its output [n, 2 * kv_dim +
  // q_dim]); the last layer under pooling gets k|v from its first rows and q for the pooled rows alone.
  const Rows& rows = pooled ? *pooled : all;
  const ops::Tensor& kvq_weight = w.kvq_proj.tensor;
  const ops::Tensor q_weight = kvq_weight.rows_range(2 * kv_dim, q_dim);
  ops::Tensor k, v, q, k_seen, v_seen;  // k_seen, v_seen [n_kv, kv_dim]: every key attention reads
  if (kv.cache) {
    // A chunk writes its keys and values straight into its sequence cache, after the earlier chunks' rows, and
    // attention reads them all from there: one GEMM each (a chunk is long; the launches cost nothing there).
    k_seen = kv.cache->keys(t, layer, 0, n_kv);
    v_seen = kv.cache->values(t, layer, 0, n_kv);
    k = kv.cache->keys(t, layer, kv.start, n);
    v = kv.cache->values(t, layer, kv.start, n);
    EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, h, kvq_weight.rows_range(0, kv_dim), k, seqs, scratch, fp8));
    EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, h, kvq_weight.rows_range(kv_dim, kv_dim), v, seqs, scratch, fp8));
    if (!pooled && !keys_only) {
      q = kvq_.matrix(t, n, q_dim);
      EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, h, q_weight, q, seqs, scratch, fp8));
    }
  } else {
    // The part's rows of k|v|q; its attention reads keys from part.kv_begin on (a half of a batch whose first
    // sequence began in the other half reads that half's keys of it too).
    const int64_t cols = pooled ? 2 * kv_dim : 2 * kv_dim + q_dim;
    const ops::Tensor stacked = kvq_.matrix(t, part.begin + n, cols);
    const ops::Tensor out = stacked.rows_range(part.begin, n);
    const ops::Tensor seen = stacked.rows_range(part.kv_begin, part.begin + n - part.kv_begin);
    EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, h, kvq_weight.rows_range(0, cols), out, seqs, scratch, fp8));
    k = out.columns(0, kv_dim);
    v = out.columns(kv_dim, kv_dim);
    k_seen = seen.columns(0, kv_dim);
    v_seen = seen.columns(kv_dim, kv_dim);
    if (!pooled) q = out.columns(2 * kv_dim, q_dim);
  }
  // Every row's q is here (no pooling in this layer): k and q go through their norms and RoPE together.
  const bool q_ready = q.data != nullptr;
  if (q_ready)
    EMBEDSERVE_RETURN_IF_ERROR(ops::qk_norm_rope(ctx_, k, w.k_norm.tensor, q, w.q_norm.tensor, eps, all.rotary));
  else
    EMBEDSERVE_RETURN_IF_ERROR(ops::qk_norm_rope(ctx_, k, w.k_norm.tensor, eps, all.rotary));
  trace("Kcur", layer, k);
  trace("Vcur", layer, v);
  if (keys_only) return Status();

  if (pooled) {  // a whole batch (part.begin 0)
    const int64_t m = pooled->rows.num_rows();
    const ops::Tensor xp = x_pooled_.matrix(t, m, c.hidden_size);
    EMBEDSERVE_RETURN_IF_ERROR(ops::gather_rows(ctx_, x, pooled_rows, xp));
    const ops::Tensor hp = x_.matrix(t, m, c.hidden_size);  // x's buffer is free once its rows are gathered
    EMBEDSERVE_RETURN_IF_ERROR(ops::gather_rows(ctx_, h, pooled_rows, hp));
    x = xp;
    h = hp;
    // q [m, q_dim] after k|v [n, 2 * kv_dim] in kvq's buffer (m ≤ n).
    q = ops::Tensor::matrix(static_cast<char*>(kvq_.data()) + n * 2 * kv_dim * static_cast<int64_t>(dtype_size(t)), t,
                            m, q_dim);
    EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, h, q_weight, q, pooled->rows.offsets, scratch));
  }
  const int64_t m = rows.rows.num_rows();
  const ops::Index& groups = rows.rows.offsets;
  if (!q_ready) EMBEDSERVE_RETURN_IF_ERROR(ops::qk_norm_rope(ctx_, q, w.q_norm.tensor, eps, rows.rotary));
  trace("Qcur", layer, q);
  // attn_output = softmax(q·kᵀ / sqrt(hd) + causal mask) · v, each query head reading its kv head
  const ops::AttentionShape shape{shard_.heads, shard_.kv_heads, static_cast<int>(hd),
                                  static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))};
  const ops::Tensor attn = attn_.matrix(t, part.begin + m, q_dim).rows_range(part.begin, m);  // [m, heads * hd]
  EMBEDSERVE_RETURN_IF_ERROR(ops::attention(ctx_, q, k_seen, v_seen, attn, shape, rows.rows, kv.offsets, rows.plan));
  trace("kqv_out", layer, attn);
  // hidden_states = o_proj(attn_output): this rank's share, summed over the ranks by the caller.
  partial = partial_for_sum(part.begin, m, h);
  return row_parallel(attn, w.o_proj.tensor, partial, groups, /*x_quantized=*/false, reduce ? &h : nullptr);
}

Status Qwen3Model::mlp_block(int layer, const Qwen3LayerWeights& w, int64_t begin, const ops::Index& groups,
                             bool reduce, ops::Tensor& x, ops::Tensor& h, ops::Tensor& partial,
                             const ops::Tensor* attention_partial) {
  const DType t = ctx_.dtype();
  const int64_t m = h.rows;
  const ops::Tensor scratch = fp8_scratch();
  const bool fp8 = ctx_.weight_dtype() == DType::kF8E4M3;
  // hidden_states = residual + hidden_states; residual = hidden_states;
  // hidden_states = self.post_attention_layernorm(hidden_states)
  const float eps = static_cast<float>(config_.rms_norm_eps);
  const ops::Tensor* quantized = fp8 ? &scratch : nullptr;
  if (attention_partial)
    EMBEDSERVE_RETURN_IF_ERROR(ops::all_reduce_add_rms_norm(ctx_, *attention_partial, x,
                                                            w.post_attention_layernorm.tensor, eps, h, quantized));
  else
    EMBEDSERVE_RETURN_IF_ERROR(ops::add_rms_norm(ctx_, x, h, w.post_attention_layernorm.tensor, eps, h, quantized));
  // After that sum: in a group that reads peers the partial's half depends on it.
  if (!partial.data) partial = partial_for_sum(begin, m, h);
  trace("ffn_inp", layer, x);
  trace("ffn_norm", layer, h);
  // Qwen3MLP: down_proj(act_fn(gate_proj(h)) * up_proj(h)), act_fn = SiLU; gate|up in one GEMM
  const int64_t I = shard_.intermediate;  // this rank's MLP columns
  const ops::Tensor gate_up = gate_up_.matrix(t, begin + m, 2 * I).rows_range(begin, m);
  const ops::Tensor act = act_.matrix(t, begin + m, I).rows_range(begin, m);
  EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, h, w.gate_up_proj.tensor, gate_up, groups, scratch, fp8));
  trace("ffn_gate_up", layer, gate_up);
  // In fp8 the down projection reads only the codes: act itself is kept for a trace or a rank's pieces.
  EMBEDSERVE_RETURN_IF_ERROR(
      ops::swiglu(ctx_, gate_up, act, fp8 ? &scratch : nullptr, /*keep_out=*/!fp8 || sink_ || shard_.ranks > 1));
  trace("ffn_act", layer, act);
  return row_parallel(act, w.down_proj.tensor, partial, groups, /*x_quantized=*/fp8, reduce ? &h : nullptr);
}

namespace {

// Started sums that are finished, whatever happens, before the caller returns (the next batch reuses their buffers).
template <size_t N>
struct SumsInFlight {
  const ops::DeviceContext& ctx;
  std::array<ops::ReduceInFlight, N> sums{};
  ~SumsInFlight() {
    for (auto& s : sums) (void)ops::finish_all_reduce(ctx, s);
  }
};

}  // namespace

Status Qwen3Model::row_parallel(const ops::Tensor& x, const ops::Tensor& w, const ops::Tensor& y,
                                const ops::Index& groups, bool x_quantized, const ops::Tensor* sum) {
  const ops::Tensor scratch = fp8_scratch();
  const int64_t m = x.rows;
  // Pieces of at least 256 rows (the GEMM's tiles stay full), on multiples of 64.
  const int64_t pieces = sum && shard_.ranks > 1 ? std::clamp<int64_t>(static_cast<int64_t>(ctx_.tp_gemm_chunks()), 1,
                                                                       std::max<int64_t>(1, m / 256))
                                                 : 1;
  if (pieces == 1) {
    EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, x, w, y, groups, scratch, x_quantized));
    return sum && shard_.ranks > 1 ? ops::all_reduce(ctx_, y, *sum) : Status();
  }
  // The rows in pieces, each piece's all-reduce started as soon as its GEMM is issued, so the link carries one
  // piece while the GPU computes the next; every sum finished before h is read.
  SumsInFlight<kMaxGemmChunks> in_flight{ctx_};
  std::vector<int32_t> piece_groups;
  for (int64_t p = 0, begin = 0; p < pieces; ++p) {
    const int64_t end = p + 1 == pieces ? m : (m * (p + 1) / pieces) / 64 * 64;
    if (end <= begin) continue;
    // The sequences' offsets within the piece (linear splits its rows by them where the backend needs it).
    piece_groups.assign(1, 0);
    for (const int32_t o : groups.host)
      if (o > begin && o < end) piece_groups.push_back(static_cast<int32_t>(o - begin));
    piece_groups.push_back(static_cast<int32_t>(end - begin));
    const ops::Tensor yp = y.rows_range(begin, end - begin);
    // (fp8: a piece quantises its own rows; the scratch's layout is the whole x's.)
    EMBEDSERVE_RETURN_IF_ERROR(ops::linear(ctx_, x.rows_range(begin, end - begin), w, yp,
                                           ops::Index{piece_groups, nullptr}, scratch, /*x_quantized=*/false));
    EMBEDSERVE_ASSIGN_OR_RETURN(in_flight.sums[static_cast<size_t>(p)],
                                ops::start_all_reduce(ctx_, yp, sum->rows_range(begin, end - begin)));
    begin = end;
  }
  for (auto& s : in_flight.sums) EMBEDSERVE_RETURN_IF_ERROR(ops::finish_all_reduce(ctx_, s));
  return Status();
}

Status Qwen3Model::layers_in_halves(const std::array<Part, 2>& halves) {
  const bool fp8 = ctx_.weight_dtype() == DType::kF8E4M3;
  const ops::Tensor scratch = fp8_scratch();
  const float eps = static_cast<float>(config_.rms_norm_eps);
  std::array<ops::Tensor, 2> xs, hs, partials;
  for (size_t i = 0; i < 2; ++i) {
    const int64_t rows = halves[i].rows->rows.num_rows();
    xs[i] = x.rows_range(halves[i].begin, rows);
    hs[i] = h.rows_range(halves[i].begin, rows);
  }
  // o_proj's and down_proj's sums of each half, in flight while the other half computes. One still in flight when
  // this returns early (an error) is waited for all the same: the next batch reuses its buffers.
  SumsInFlight<4> in_flight{ctx_};
  ops::ReduceInFlight *const attention_sum = &in_flight.sums[0], *const mlp_sum = &in_flight.sums[2];

  const size_t last = layers_.size() - 1;
  for (size_t l = 0; l < last; ++l) {
    const Qwen3LayerWeights& w = layers_[l];
    const int layer = static_cast<int>(l);
    for (size_t i = 0; i < 2; ++i) {
      if (l > 0) {  // the previous layer's end for this half: its MLP's sum, the residual add and this input norm
        EMBEDSERVE_RETURN_IF_ERROR(ops::finish_all_reduce(ctx_, mlp_sum[i]));
        EMBEDSERVE_RETURN_IF_ERROR(
            ops::add_rms_norm(ctx_, xs[i], hs[i], w.input_layernorm.tensor, eps, hs[i], fp8 ? &scratch : nullptr));
      }
      EMBEDSERVE_RETURN_IF_ERROR(attention_block(layer, w, halves[i], nullptr, {}, /*keys_only=*/false,
                                                 /*h_quantized=*/fp8 && l > 0, /*reduce=*/false, xs[i], hs[i],
                                                 partials[i]));
      EMBEDSERVE_ASSIGN_OR_RETURN(attention_sum[i], ops::start_all_reduce(ctx_, partials[i], hs[i]));
    }
    for (size_t i = 0; i < 2; ++i) {
      EMBEDSERVE_RETURN_IF_ERROR(ops::finish_all_reduce(ctx_, attention_sum[i]));
      EMBEDSERVE_RETURN_IF_ERROR(mlp_block(layer, w, halves[i].begin, halves[i].rows->rows.offsets,
                                           /*reduce=*/false, xs[i], hs[i], partials[i]));
      EMBEDSERVE_ASSIGN_OR_RETURN(mlp_sum[i], ops::start_all_reduce(ctx_, partials[i], hs[i]));
    }
  }
  // Into the last layer, which runs whole (its pooling gathers rows of both halves): h normed, not quantised.
  for (size_t i = 0; i < 2; ++i) {
    EMBEDSERVE_RETURN_IF_ERROR(ops::finish_all_reduce(ctx_, mlp_sum[i]));
    EMBEDSERVE_RETURN_IF_ERROR(
        ops::add_rms_norm(ctx_, xs[i], hs[i], layers_[last].input_layernorm.tensor, eps, hs[i], nullptr));
  }
  return Status();
}

}  // namespace embedserve
