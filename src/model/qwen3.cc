// Qwen3Model's forward pass as calls to ops; reads top to bottom like transformers' modeling_qwen3.py
// (Qwen3Model.forward → Qwen3DecoderLayer → Qwen3Attention / Qwen3MLP), padding-free.
#include "model/qwen3.h"

#include <array>
#include <cmath>
#include <cstring>
#include <string>

#include "model/pooling.h"
#include "ops/convert.h"

namespace embedserve {
namespace {

// Reads tensor `name` of shape `shape` from the store and widens it to f32.
StatusOr<std::vector<float>> load_f32(const WeightStore& store, const std::string& name,
                                      std::initializer_list<int64_t> shape) {
  const std::vector<int64_t> expected(shape);
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView t, store.get(name, expected));
  std::vector<float> out(static_cast<size_t>(t.numel()));
  ops::convert_to_f32(t.data, t.dtype, out.data(), out.size());
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<Qwen3Model>> Qwen3Model::load(const ModelConfig& config, const WeightStore& store,
                                                       const ops::Ops& ops) {
  const ModelConfig& c = config;
  if (c.num_hidden_layers < 1 || c.hidden_size < 1 || c.head_dim < 2 || c.head_dim % 2 != 0 ||
      c.num_key_value_heads < 1 || c.num_attention_heads % c.num_key_value_heads != 0)
    return invalid_argument("config.json describes an impossible Qwen3 shape (layers " +
                            std::to_string(c.num_hidden_layers) + ", heads " + std::to_string(c.num_attention_heads) +
                            ", kv heads " + std::to_string(c.num_key_value_heads) + ", head_dim " +
                            std::to_string(c.head_dim) + ")");
  std::unique_ptr<Qwen3Model> m(new Qwen3Model(config, ops));
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q_dim = int64_t{c.num_attention_heads} * hd, kv_dim = int64_t{c.num_key_value_heads} * hd;

  // The embedding table stays mapped in its stored dtype; its rows are the vocabulary the engine checks ids
  // against (vocab_size in config.json may round up past them).
  EMBEDSERVE_ASSIGN_OR_RETURN(m->embed_tokens_, store.get("embed_tokens.weight"));
  const auto& es = m->embed_tokens_.shape;
  if (es.size() != 2 || es[0] < 1 || es[1] != H)
    return invalid_argument("tensor " + m->embed_tokens_.name + " in " + m->embed_tokens_.file +
                            " should have shape [vocab, " + std::to_string(H) + "]");

  m->layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    Qwen3LayerWeights& w = m->layers_[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    EMBEDSERVE_ASSIGN_OR_RETURN(w.input_layernorm, load_f32(store, p + "input_layernorm.weight", {H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.q_proj, load_f32(store, p + "self_attn.q_proj.weight", {q_dim, H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.k_proj, load_f32(store, p + "self_attn.k_proj.weight", {kv_dim, H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.v_proj, load_f32(store, p + "self_attn.v_proj.weight", {kv_dim, H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.q_norm, load_f32(store, p + "self_attn.q_norm.weight", {hd}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.k_norm, load_f32(store, p + "self_attn.k_norm.weight", {hd}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.o_proj, load_f32(store, p + "self_attn.o_proj.weight", {H, q_dim}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.post_attention_layernorm,
                                load_f32(store, p + "post_attention_layernorm.weight", {H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.gate_proj, load_f32(store, p + "mlp.gate_proj.weight", {I, H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.up_proj, load_f32(store, p + "mlp.up_proj.weight", {I, H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(w.down_proj, load_f32(store, p + "mlp.down_proj.weight", {H, I}));
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(m->norm_, load_f32(store, "norm.weight", {H}));

  // Qwen3RotaryEmbedding: inv_freq = 1 / base^(arange(0, dim, 2).float() / dim), every step in float32.
  m->inv_freq_.resize(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(hd);
    m->inv_freq_[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta), exponent);
  }
  return m;
}

int64_t Qwen3Model::vocab_rows() const { return embed_tokens_.shape.empty() ? 0 : embed_tokens_.shape[0]; }

size_t Qwen3Model::weight_bytes() const {
  size_t n = norm_.size();
  for (const auto& w : layers_)
    n += w.input_layernorm.size() + w.q_proj.size() + w.k_proj.size() + w.v_proj.size() + w.q_norm.size() +
         w.k_norm.size() + w.o_proj.size() + w.post_attention_layernorm.size() + w.gate_proj.size() +
         w.up_proj.size() + w.down_proj.size();
  return n * sizeof(float);
}

size_t Qwen3Model::workspace_bytes_for(const ModelConfig& c, size_t n_tokens) {
  const size_t q_dim = size_t{static_cast<size_t>(c.num_attention_heads)} * c.head_dim;
  const size_t kv_dim = size_t{static_cast<size_t>(c.num_key_value_heads)} * c.head_dim;
  // x, h, q, k, v, attn, gate, up, cos, sin (the pooled rows' q_cos/q_sin are at most as many again)
  const size_t per_token = 2 * size_t(c.hidden_size) + 2 * q_dim + 2 * kv_dim + 2 * size_t(c.intermediate_size) +
                           2 * size_t(c.head_dim);
  return per_token * n_tokens * sizeof(float);
}

size_t Qwen3Model::workspace_bytes() const { return ws_.bytes(); }

void Qwen3Model::allocate(size_t n) {
  const ModelConfig& c = config_;
  const size_t H = c.hidden_size, hd = c.head_dim;
  ws_.x.get(n * H);
  ws_.h.get(n * H);
  ws_.q.get(n * c.num_attention_heads * hd);
  ws_.k.get(n * c.num_key_value_heads * hd);
  ws_.v.get(n * c.num_key_value_heads * hd);
  ws_.attn.get(n * c.num_attention_heads * hd);
  ws_.gate.get(n * c.intermediate_size);
  ws_.up.get(n * c.intermediate_size);
  ws_.cos.get(n * hd / 2);
  ws_.sin.get(n * hd / 2);
  ws_.q_cos.get(n * hd / 2);  // one row per sequence, at most one per token
  ws_.q_sin.get(n * hd / 2);
}

void Qwen3Model::reserve(size_t max_tokens) { allocate(max_tokens); }

Status Qwen3Model::forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                           std::span<float> out) {
  const ModelConfig& c = config_;
  const int64_t n = static_cast<int64_t>(token_ids.size());
  const int64_t n_seqs = static_cast<int64_t>(seq_offsets.size()) - 1;
  const int64_t H = c.hidden_size;
  if (n_seqs < 1 || seq_offsets.back() != n || static_cast<int64_t>(out.size()) != n_seqs * H)
    return internal_error("Qwen3Model::forward: batch shape does not match its offsets or output");
  allocate(static_cast<size_t>(n));

  // Positions restart at 0 in every sequence (what position_ids = arange(len) is per unpadded row).
  ws_.kv_offsets.assign(seq_offsets.begin(), seq_offsets.end());
  ws_.positions.resize(static_cast<size_t>(n));
  for (int64_t s = 0; s < n_seqs; ++s)
    for (int32_t t = seq_offsets[s]; t < seq_offsets[s + 1]; ++t) ws_.positions[t] = t - seq_offsets[s];
  ws_.n_rows = n;
  ws_.row_offsets = ws_.kv_offsets;
  ws_.row_positions = ws_.positions;

  // position_embeddings = self.rotary_emb(hidden_states, position_ids): cos, sin f32 [n, head_dim/2]
  ops_.rope_tables(ws_.positions, inv_freq_, ws_.cos.data(), ws_.sin.data());
  // inputs_embeds = self.embed_tokens(input_ids): x f32 [n, hidden]
  ops_.embedding(embed_tokens_.data, embed_tokens_.dtype, H, token_ids, ws_.x.data());

  // Only the pooled rows' final states are read, and the last layer's other rows feed nothing but its own
  // keys and values: under last-token or CLS pooling it carries just the pooled rows past them.
  const std::vector<int32_t> pooled = pooled_rows(seq_offsets, pooling);
  for (size_t l = 0; l < layers_.size(); ++l)
    decoder_layer(layers_[l], l + 1 == layers_.size() ? std::span<const int32_t>(pooled) : std::span<const int32_t>());

  // hidden_states = self.norm(hidden_states), over the rows carried to the end
  float* x = ws_.x.data();
  ops_.rms_norm(x, norm_.data(), x, ws_.n_rows, H, H, static_cast<float>(c.rms_norm_eps));
  if (pooling == Pooling::kMean) {
    mean_pool(x, H, seq_offsets, out.data());
  } else {
    std::memcpy(out.data(), x, static_cast<size_t>(n_seqs * H) * sizeof(float));  // one row per sequence, in order
  }
  return Status();
}

void Qwen3Model::decoder_layer(const Qwen3LayerWeights& w, std::span<const int32_t> pooled) {
  const ModelConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int heads = c.num_attention_heads, kv_heads = c.num_key_value_heads;
  const int64_t q_dim = int64_t{heads} * hd, kv_dim = int64_t{kv_heads} * hd;
  const float eps = static_cast<float>(c.rms_norm_eps);
  float* x = ws_.x.data();  // residual stream, f32 [n, hidden]
  float* h = ws_.h.data();
  float* q = ws_.q.data();
  float* k = ws_.k.data();
  float* v = ws_.v.data();
  int64_t n = ws_.n_rows;

  // residual = hidden_states; hidden_states = self.input_layernorm(hidden_states)
  ops_.rms_norm(x, w.input_layernorm.data(), h, n, H, H, eps);

  // Qwen3Attention. key_states = k_norm(k_proj(h).view(n, kv_heads, hd)), then RoPE; value_states = v_proj(h)
  ops_.linear(h, w.k_proj.data(), k, n, kv_dim, H, ws_.kv_offsets);  // k f32 [n, kv_heads, hd]
  ops_.linear(h, w.v_proj.data(), v, n, kv_dim, H, ws_.kv_offsets);  // v f32 [n, kv_heads, hd]
  ops_.rms_norm(k, w.k_norm.data(), k, n * kv_heads, hd, hd, eps);
  ops_.apply_rope(k, ws_.cos.data(), ws_.sin.data(), n, kv_heads, static_cast<int>(hd), kv_dim);
  const float* q_cos = ws_.cos.data();
  const float* q_sin = ws_.sin.data();
  if (!pooled.empty()) {
    // Keys and values cover every token; from here on only the pooled rows (one per sequence) go on.
    // Rows ascend and rows[i] ≥ i, so gathering in place never overwrites a row still to be read.
    ops_.gather_rows(x, H, pooled, x);
    ops_.gather_rows(h, H, pooled, h);
    n = static_cast<int64_t>(pooled.size());
    ws_.n_rows = n;
    ws_.row_positions.resize(pooled.size());
    ws_.row_offsets.resize(pooled.size() + 1);
    for (size_t i = 0; i < pooled.size(); ++i) {
      ws_.row_positions[i] = ws_.positions[pooled[i]];
      ws_.row_offsets[i] = static_cast<int32_t>(i);
    }
    ws_.row_offsets[pooled.size()] = static_cast<int32_t>(pooled.size());
    ops_.rope_tables(ws_.row_positions, inv_freq_, ws_.q_cos.data(), ws_.q_sin.data());
    q_cos = ws_.q_cos.data();
    q_sin = ws_.q_sin.data();
  }
  // query_states = q_norm(q_proj(h).view(n, heads, hd)), then RoPE
  ops_.linear(h, w.q_proj.data(), q, n, q_dim, H, ws_.row_offsets);  // q f32 [n, heads, hd]
  ops_.rms_norm(q, w.q_norm.data(), q, n * heads, hd, hd, eps);
  ops_.apply_rope(q, q_cos, q_sin, n, heads, static_cast<int>(hd), q_dim);
  // attn_output = softmax(q·kᵀ / sqrt(hd) + causal mask) · v, each query head reading its kv head
  const ops::Ops::AttentionShape shape{heads, kv_heads, static_cast<int>(hd),
                                       static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))};
  ops_.attention(q, k, v, ws_.attn.data(), shape, ws_.row_offsets, ws_.row_positions, ws_.kv_offsets);
  // hidden_states = residual + o_proj(attn_output)
  ops_.linear(ws_.attn.data(), w.o_proj.data(), h, n, H, q_dim, ws_.row_offsets);
  ops_.add(x, h, n * H);

  // residual = hidden_states; hidden_states = self.post_attention_layernorm(hidden_states)
  ops_.rms_norm(x, w.post_attention_layernorm.data(), h, n, H, H, eps);
  // Qwen3MLP: down_proj(act_fn(gate_proj(h)) * up_proj(h)), act_fn = SiLU
  float* gate = ws_.gate.data();  // f32 [n, intermediate]
  float* up = ws_.up.data();      // f32 [n, intermediate]
  ops_.linear(h, w.gate_proj.data(), gate, n, I, H, ws_.row_offsets);
  ops_.linear(h, w.up_proj.data(), up, n, I, H, ws_.row_offsets);
  ops_.silu_mul(gate, up, gate, n, I);
  ops_.linear(gate, w.down_proj.data(), h, n, H, I, ws_.row_offsets);
  // hidden_states = residual + mlp(hidden_states)
  ops_.add(x, h, n * H);
}

}  // namespace embedserve
