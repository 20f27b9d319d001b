// Qwen3CudaModel's forward pass as calls to ops/cuda; reads top to bottom like qwen3.cc and transformers'
// modeling_qwen3.py (Qwen3Model.forward → Qwen3DecoderLayer → Qwen3Attention / Qwen3MLP), padding-free.
#include "model/qwen3_cuda.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "model/pooling.h"
#include "ops/convert.h"
#include "ops/cuda/attention_cuda.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_device.h"
#include "ops/cuda/elementwise_cuda.h"
#include "ops/cuda/embedding_cuda.h"
#include "ops/cuda/linear_cuda.h"
#include "ops/cuda/pooling_cuda.h"
#include "ops/cuda/rms_norm_cuda.h"
#include "ops/cuda/rope_cuda.h"

namespace embedserve {

const char* cuda_precision_name(CudaPrecision p) { return p == CudaPrecision::kF32 ? "f32" : "bf16"; }

namespace {

// cuBLAS's workspace, given to it up front so no GEMM allocates. None by default: without one cuBLAS cannot
// pick split-K kernels, whose reduction order changes with the number of rows, so a row's bits do not depend
// on its batch (measured at the 4B's shapes, docs/ARCHITECTURE.md). EMBEDSERVE_CUBLAS_WORKSPACE_MB gives it
// one (Hopper's recommended 32 MiB), for measuring what invariance costs.
size_t cublas_workspace_bytes() {
  const char* mb = std::getenv("EMBEDSERVE_CUBLAS_WORKSPACE_MB");
  if (!mb || !*mb) return 0;
  return static_cast<size_t>(std::strtoul(mb, nullptr, 10)) << 20;
}

// A cudaMalloc'd buffer, freed with its owner.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p_) cudaFree(p_);
  }
  Status allocate(size_t bytes, const char* what) {
    bytes_ = bytes;
    const cudaError_t err = cudaMalloc(&p_, bytes ? bytes : 1);
    if (err != cudaSuccess) {
      cudaGetLastError();
      p_ = nullptr;
      return resource_exhausted(std::string("cudaMalloc of ") + std::to_string(bytes >> 20) + " MiB for " + what +
                                " failed (" + cudaGetErrorString(err) +
                                "): use a smaller --max-batch-tokens or a GPU with more free memory");
    }
    return Status();
  }
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

uint16_t f32_to_bf16_rne(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Copies tensor `t` into dst T [numel] on the device, converting on the host where its dtype is not T.
template <typename T>
Status upload(const TensorView& t, T* dst) {
  const size_t n = static_cast<size_t>(t.numel());
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (t.dtype == DType::kBF16) {
      EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, t.data, n * 2, cudaMemcpyHostToDevice));
      return Status();
    }
  }
  std::vector<float> wide(n);
  ops::convert_to_f32(t.data, t.dtype, wide.data(), n);
  if constexpr (std::is_same_v<T, float>) {
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, wide.data(), n * 4, cudaMemcpyHostToDevice));
  } else {
    std::vector<uint16_t> narrow(n);
    for (size_t i = 0; i < n; ++i) narrow[i] = f32_to_bf16_rne(wide[i]);
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, narrow.data(), n * 2, cudaMemcpyHostToDevice));
  }
  return Status();
}

template <typename T>
struct LayerWeights {
  DeviceBuffer input_layernorm;           // T [hidden]
  DeviceBuffer q_proj;                    // T [heads * head_dim, hidden]
  DeviceBuffer k_proj;                    // T [kv_heads * head_dim, hidden]
  DeviceBuffer v_proj;                    // T [kv_heads * head_dim, hidden]
  DeviceBuffer q_norm;                    // T [head_dim]
  DeviceBuffer k_norm;                    // T [head_dim]
  DeviceBuffer o_proj;                    // T [hidden, heads * head_dim]
  DeviceBuffer post_attention_layernorm;  // T [hidden]
  DeviceBuffer gate_up_proj;              // T [2 * intermediate, hidden]: gate_proj's rows, then up_proj's
  DeviceBuffer down_proj;                 // T [hidden, intermediate]
};

template <typename T>
class Model final : public Qwen3CudaModel {
 public:
  Model(const ModelConfig& c, const cuda::CublasApi& api, CudaPrecision precision)
      : c_(c), api_(api), precision_(precision) {}
  ~Model() override {
    if (handle_) api_.destroy(handle_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status load(const WeightStore& store, size_t max_tokens);
  Status forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                 bool normalize, std::span<float> out) override;
  int64_t vocab_rows() const override { return vocab_; }
  size_t weight_bytes() const override { return weight_bytes_; }
  size_t workspace_bytes() const override { return workspace_bytes_; }
  std::string description() const override { return description_; }

 private:
  Status tensor(const WeightStore& store, const std::string& name, std::vector<int64_t> shape, DeviceBuffer* buf);
  Status decoder_layer(const LayerWeights<T>& w, bool last);

  ModelConfig c_;
  const cuda::CublasApi& api_;
  CudaPrecision precision_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t handle_ = nullptr;
  std::string description_;
  int64_t vocab_ = 0;
  size_t max_tokens_ = 0;
  size_t weight_bytes_ = 0, workspace_bytes_ = 0;

  DeviceBuffer embed_tokens_;  // T [vocab, hidden]
  std::vector<LayerWeights<T>> layers_;
  DeviceBuffer norm_;          // T [hidden]
  DeviceBuffer inv_freq_;      // f32 [head_dim / 2]

  // Workspace, sized for max_tokens rows (n below).
  DeviceBuffer x_, x_pooled_, h_;  // T [n, hidden]: residual stream, pooled rows' residual, normed / sub-layer out
  DeviceBuffer q_, attn_;          // T [n, heads * head_dim]
  DeviceBuffer k_, v_;             // T [n, kv_heads * head_dim]
  DeviceBuffer gate_up_;           // T [n, 2 * intermediate]
  DeviceBuffer act_;               // T [n, intermediate]
  DeviceBuffer out_;               // f32 [n, hidden]: one vector per sequence, at most one per token
  DeviceBuffer index_;             // int32: ids, positions, offsets, tiles of one batch (see forward)
  DeviceBuffer cublas_workspace_;
  std::vector<int32_t> host_index_;

  // The current batch, set by forward for decoder_layer.
  T* x = nullptr;
  T* h = nullptr;
  int64_t n_rows = 0;  // rows carried: every token, or one per sequence from the last layer's queries on
  const int32_t* d_positions = nullptr;
  const int32_t* d_seq_offsets = nullptr;
  const int32_t* d_tiles = nullptr;
  int64_t n_tiles = 0;
  int64_t n_seqs = 0;
  // The last layer's pooled rows (last-token or CLS pooling); null under mean pooling.
  const int32_t* d_pooled_rows = nullptr;
  const int32_t* d_pooled_positions = nullptr;
  const int32_t* d_identity_offsets = nullptr;  // 0, 1, …, n_seqs
  const int32_t* d_pooled_tiles = nullptr;
};

template <typename T>
Status Model<T>::tensor(const WeightStore& store, const std::string& name, std::vector<int64_t> shape,
                        DeviceBuffer* buf) {
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView t, store.get(name, shape));
  EMBEDSERVE_RETURN_IF_ERROR(buf->allocate(static_cast<size_t>(t.numel()) * sizeof(T), name.c_str()));
  weight_bytes_ += buf->bytes();
  return upload(t, buf->as<T>());
}

template <typename T>
Status Model<T>::load(const WeightStore& store, size_t max_tokens) {
  const ModelConfig& c = c_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int64_t q_dim = int64_t{c.num_attention_heads} * hd, kv_dim = int64_t{c.num_key_value_heads} * hd;
  max_tokens_ = max_tokens;
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::cublas_status(api_, api_.create(&handle_), "cublasCreate"));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::cublas_status(api_, api_.set_stream(handle_, stream_), "cublasSetStream"));

  // The embedding table lives on the device in T; its rows are the vocabulary ids are checked against.
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView emb, store.get("embed_tokens.weight"));
  if (emb.shape.size() != 2 || emb.shape[0] < 1 || emb.shape[1] != H)
    return invalid_argument("tensor " + emb.name + " in " + emb.file + " should have shape [vocab, " +
                            std::to_string(H) + "]");
  vocab_ = emb.shape[0];
  EMBEDSERVE_RETURN_IF_ERROR(tensor(store, "embed_tokens.weight", emb.shape, &embed_tokens_));

  layers_ = std::vector<LayerWeights<T>>(static_cast<size_t>(c.num_hidden_layers));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    LayerWeights<T>& w = layers_[l];
    const std::string p = "layers." + std::to_string(l) + ".";
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "input_layernorm.weight", {H}, &w.input_layernorm));
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "self_attn.q_proj.weight", {q_dim, H}, &w.q_proj));
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "self_attn.k_proj.weight", {kv_dim, H}, &w.k_proj));
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "self_attn.v_proj.weight", {kv_dim, H}, &w.v_proj));
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "self_attn.q_norm.weight", {hd}, &w.q_norm));
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "self_attn.k_norm.weight", {hd}, &w.k_norm));
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "self_attn.o_proj.weight", {H, q_dim}, &w.o_proj));
    EMBEDSERVE_RETURN_IF_ERROR(
        tensor(store, p + "post_attention_layernorm.weight", {H}, &w.post_attention_layernorm));
    // gate_proj and up_proj as one [2I, H] matrix: one GEMM instead of two, and its output rows hold
    // gate then up, which silu_mul reads with a stride of 2I.
    EMBEDSERVE_ASSIGN_OR_RETURN(TensorView gate, store.get(p + "mlp.gate_proj.weight", std::vector<int64_t>{I, H}));
    EMBEDSERVE_ASSIGN_OR_RETURN(TensorView up, store.get(p + "mlp.up_proj.weight", std::vector<int64_t>{I, H}));
    EMBEDSERVE_RETURN_IF_ERROR(w.gate_up_proj.allocate(size_t(2 * I * H) * sizeof(T), "mlp.gate_up_proj"));
    weight_bytes_ += w.gate_up_proj.bytes();
    EMBEDSERVE_RETURN_IF_ERROR(upload(gate, w.gate_up_proj.template as<T>()));
    EMBEDSERVE_RETURN_IF_ERROR(upload(up, w.gate_up_proj.template as<T>() + I * H));
    EMBEDSERVE_RETURN_IF_ERROR(tensor(store, p + "mlp.down_proj.weight", {H, I}, &w.down_proj));
  }
  EMBEDSERVE_RETURN_IF_ERROR(tensor(store, "norm.weight", {H}, &norm_));

  // Qwen3RotaryEmbedding: inv_freq = 1 / base^(arange(0, dim, 2).float() / dim), every step in float32
  // (the same host arithmetic as qwen3.cc, so both backends rotate by the same angles).
  std::vector<float> inv_freq(static_cast<size_t>(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i)
    inv_freq[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta), static_cast<float>(2 * i) / static_cast<float>(hd));
  EMBEDSERVE_RETURN_IF_ERROR(inv_freq_.allocate(inv_freq.size() * 4, "inv_freq"));
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(inv_freq_.as<float>(), inv_freq.data(), inv_freq.size() * 4, cudaMemcpyHostToDevice));

  // The workspace: everything a batch of max_tokens needs, allocated now so no batch allocates.
  const size_t n = max_tokens;
  const size_t t = sizeof(T);
  EMBEDSERVE_RETURN_IF_ERROR(x_.allocate(n * H * t, "the residual stream"));
  EMBEDSERVE_RETURN_IF_ERROR(x_pooled_.allocate(n * H * t, "the pooled rows"));
  EMBEDSERVE_RETURN_IF_ERROR(h_.allocate(n * H * t, "hidden states"));
  EMBEDSERVE_RETURN_IF_ERROR(q_.allocate(n * q_dim * t, "queries"));
  EMBEDSERVE_RETURN_IF_ERROR(attn_.allocate(n * q_dim * t, "attention output"));
  EMBEDSERVE_RETURN_IF_ERROR(k_.allocate(n * kv_dim * t, "keys"));
  EMBEDSERVE_RETURN_IF_ERROR(v_.allocate(n * kv_dim * t, "values"));
  EMBEDSERVE_RETURN_IF_ERROR(gate_up_.allocate(n * 2 * I * t, "the MLP's gate and up projections"));
  EMBEDSERVE_RETURN_IF_ERROR(act_.allocate(n * I * t, "the MLP's activations"));
  EMBEDSERVE_RETURN_IF_ERROR(out_.allocate(n * H * 4, "output vectors"));
  // ids, positions [n] each; offsets [n+1]; tiles [2·(n/32 + n)]; pooled rows, positions [n] each;
  // identity offsets [n+1]; pooled tiles [2n]: 11n + 2 int32 at most.
  host_index_.resize(11 * n + 2);
  EMBEDSERVE_RETURN_IF_ERROR(index_.allocate(host_index_.size() * 4, "batch indices"));
  const size_t cublas_bytes = cublas_workspace_bytes();
  if (cublas_bytes > 0) EMBEDSERVE_RETURN_IF_ERROR(cublas_workspace_.allocate(cublas_bytes, "cuBLAS's workspace"));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::cublas_status(
      api_, api_.set_workspace(handle_, cublas_workspace_.as<void>(), cublas_bytes), "cublasSetWorkspace"));
  for (const DeviceBuffer* b : {&x_, &x_pooled_, &h_, &q_, &attn_, &k_, &v_, &gate_up_, &act_, &out_, &index_,
                                &cublas_workspace_})
    workspace_bytes_ += b->bytes();

  EMBEDSERVE_ASSIGN_OR_RETURN(std::vector<cuda::DeviceProperties> devices, cuda::list_devices());
  description_ = "cuda:0 " + (devices.empty() ? std::string("?") : devices[0].name) + ", " +
                 cuda_precision_name(precision_) + " compute, cuBLAS " + api_.path + " (workspace " +
                 std::to_string(cublas_bytes >> 20) + " MiB)";
  return Status();
}

template <typename T>
Status Model<T>::forward(std::span<const int32_t> token_ids, std::span<const int32_t> seq_offsets, Pooling pooling,
                         bool normalize, std::span<float> out) {
  const ModelConfig& c = c_;
  const int64_t n = static_cast<int64_t>(token_ids.size());
  n_seqs = static_cast<int64_t>(seq_offsets.size()) - 1;
  const int64_t H = c.hidden_size;
  if (n_seqs < 1 || n < 1 || seq_offsets.back() != n || static_cast<int64_t>(out.size()) != n_seqs * H ||
      static_cast<size_t>(n) > max_tokens_)
    return internal_error("Qwen3CudaModel::forward: batch shape does not match its offsets, output or workspace");
  // The current device is per host thread, and the batcher thread that calls forward is not the one that loaded.
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));

  // Every index array of the batch, built on the host and sent in one copy:
  // ids [n] | positions [n] | seq_offsets [S+1] | tiles [2·T] | pooled rows [S] | pooled positions [S] |
  // identity offsets [S+1] | pooled tiles [2S]
  int32_t* hi = host_index_.data();
  size_t at = 0;
  auto place = [&](size_t count) {
    const size_t start = at;
    at += count;
    return start;
  };
  const size_t ids_at = place(n), pos_at = place(n), off_at = place(n_seqs + 1);
  std::memcpy(hi + ids_at, token_ids.data(), n * 4);
  // Positions restart at 0 in every sequence (what position_ids = arange(len) is per unpadded row).
  for (int64_t s = 0; s < n_seqs; ++s)
    for (int32_t r = seq_offsets[s]; r < seq_offsets[s + 1]; ++r) hi[pos_at + r] = r - seq_offsets[s];
  std::memcpy(hi + off_at, seq_offsets.data(), (n_seqs + 1) * 4);
  std::vector<int32_t> tiles;
  cuda::attention_tiles(seq_offsets.data(), n_seqs, &tiles);
  const size_t tiles_at = place(tiles.size());
  std::memcpy(hi + tiles_at, tiles.data(), tiles.size() * 4);
  n_tiles = static_cast<int64_t>(tiles.size() / 2);

  const std::vector<int32_t> pooled = pooled_rows(seq_offsets, pooling);  // empty under mean pooling
  size_t prow_at = 0, ppos_at = 0, ident_at = 0, ptiles_at = 0;
  if (!pooled.empty()) {
    prow_at = place(n_seqs);
    ppos_at = place(n_seqs);
    ident_at = place(n_seqs + 1);
    ptiles_at = place(2 * n_seqs);
    for (int64_t s = 0; s < n_seqs; ++s) {
      hi[prow_at + s] = pooled[s];
      hi[ppos_at + s] = pooled[s] - seq_offsets[s];
      hi[ident_at + s] = static_cast<int32_t>(s);
      hi[ptiles_at + 2 * s] = static_cast<int32_t>(s);  // one query row per sequence: one tile each
      hi[ptiles_at + 2 * s + 1] = static_cast<int32_t>(s);
    }
    hi[ident_at + n_seqs] = static_cast<int32_t>(n_seqs);
  }
  int32_t* di = index_.as<int32_t>();
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(di, hi, at * 4, cudaMemcpyHostToDevice, stream_));
  d_positions = di + pos_at;
  d_seq_offsets = di + off_at;
  d_tiles = di + tiles_at;
  d_pooled_rows = pooled.empty() ? nullptr : di + prow_at;
  d_pooled_positions = di + ppos_at;
  d_identity_offsets = di + ident_at;
  d_pooled_tiles = di + ptiles_at;

  x = x_.as<T>();
  h = h_.as<T>();
  n_rows = n;
  // inputs_embeds = self.embed_tokens(input_ids): x T [n, hidden]
  EMBEDSERVE_RETURN_IF_ERROR(cuda::embedding(embed_tokens_.as<T>(), H, di + ids_at, n, x, stream_));
  for (size_t l = 0; l < layers_.size(); ++l)
    EMBEDSERVE_RETURN_IF_ERROR(decoder_layer(layers_[l], l + 1 == layers_.size()));

  // hidden_states = self.norm(hidden_states), over the rows carried to the end
  EMBEDSERVE_RETURN_IF_ERROR(cuda::rms_norm(x, norm_.as<T>(), x, n_rows, H, static_cast<float>(c.rms_norm_eps), stream_));
  // Pooling (+ Normalize): the mean of each sequence's rows, or of its one carried row.
  const int32_t* pool_offsets = pooled.empty() ? d_seq_offsets : d_identity_offsets;
  EMBEDSERVE_RETURN_IF_ERROR(cuda::pool_normalize(x, H, pool_offsets, n_seqs, normalize, out_.as<float>(), stream_));
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(out.data(), out_.as<float>(), out.size() * 4, cudaMemcpyDeviceToHost, stream_));
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return Status();
}

template <typename T>
Status Model<T>::decoder_layer(const LayerWeights<T>& w, bool last) {
  const ModelConfig& c = c_;
  const int64_t H = c.hidden_size, I = c.intermediate_size, hd = c.head_dim;
  const int heads = c.num_attention_heads, kv_heads = c.num_key_value_heads;
  const int64_t q_dim = int64_t{heads} * hd, kv_dim = int64_t{kv_heads} * hd;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t n = n_rows;  // every token: keys and values always cover the whole batch
  T* q = q_.as<T>();
  T* k = k_.as<T>();
  T* v = v_.as<T>();

  // residual = hidden_states; hidden_states = self.input_layernorm(hidden_states)
  EMBEDSERVE_RETURN_IF_ERROR(cuda::rms_norm(x, w.input_layernorm.template as<T>(), h, n, H, eps, stream_));
  // Qwen3Attention. key_states = k_norm(k_proj(h).view(n, kv_heads, hd)), then RoPE; value_states = v_proj(h)
  EMBEDSERVE_RETURN_IF_ERROR(cuda::linear(api_, handle_, h, w.k_proj.template as<T>(), k, n, kv_dim, H));  // k T [n, kv_heads, hd]
  EMBEDSERVE_RETURN_IF_ERROR(cuda::linear(api_, handle_, h, w.v_proj.template as<T>(), v, n, kv_dim, H));  // v T [n, kv_heads, hd]
  EMBEDSERVE_RETURN_IF_ERROR(cuda::rms_norm(k, w.k_norm.template as<T>(), k, n * kv_heads, hd, eps, stream_));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::apply_rope(k, d_positions, inv_freq_.as<float>(), n, kv_heads, int(hd), stream_));

  int64_t rows = n;
  const int32_t* q_positions = d_positions;
  const int32_t* q_offsets = d_seq_offsets;
  const int32_t* tiles = d_tiles;
  int64_t tile_count = n_tiles;
  if (last && d_pooled_rows) {
    // Keys and values cover every token; from here on only the pooled rows (one per sequence) go on.
    T* xp = x_pooled_.as<T>();
    EMBEDSERVE_RETURN_IF_ERROR(cuda::gather_rows(x, H, d_pooled_rows, n_seqs, xp, stream_));
    EMBEDSERVE_RETURN_IF_ERROR(cuda::gather_rows(h, H, d_pooled_rows, n_seqs, x, stream_));  // x is free now
    h = x;
    x = xp;
    rows = n_seqs;
    n_rows = rows;
    q_positions = d_pooled_positions;
    q_offsets = d_identity_offsets;
    tiles = d_pooled_tiles;
    tile_count = n_seqs;
  }
  // query_states = q_norm(q_proj(h).view(rows, heads, hd)), then RoPE
  EMBEDSERVE_RETURN_IF_ERROR(cuda::linear(api_, handle_, h, w.q_proj.template as<T>(), q, rows, q_dim, H));  // q T [rows, heads, hd]
  EMBEDSERVE_RETURN_IF_ERROR(cuda::rms_norm(q, w.q_norm.template as<T>(), q, rows * heads, hd, eps, stream_));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::apply_rope(q, q_positions, inv_freq_.as<float>(), rows, heads, int(hd), stream_));
  // attn_output = softmax(q·kᵀ / sqrt(hd) + causal mask) · v, each query head reading its kv head
  const cuda::AttentionShape shape{heads, kv_heads, static_cast<int>(hd),
                                   static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)))};
  T* attn = attn_.as<T>();  // T [rows, heads, hd]
  EMBEDSERVE_RETURN_IF_ERROR(
      cuda::attention(q, k, v, attn, shape, q_offsets, q_positions, d_seq_offsets, tiles, tile_count, stream_));
  // hidden_states = residual + o_proj(attn_output)
  EMBEDSERVE_RETURN_IF_ERROR(cuda::linear(api_, handle_, attn, w.o_proj.template as<T>(), h, rows, H, q_dim));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::add(x, h, rows * H, stream_));

  // residual = hidden_states; hidden_states = self.post_attention_layernorm(hidden_states)
  EMBEDSERVE_RETURN_IF_ERROR(cuda::rms_norm(x, w.post_attention_layernorm.template as<T>(), h, rows, H, eps, stream_));
  // Qwen3MLP: down_proj(act_fn(gate_proj(h)) * up_proj(h)), act_fn = SiLU; gate|up in one GEMM
  T* gate_up = gate_up_.as<T>();  // T [rows, 2 * intermediate]
  T* act = act_.as<T>();          // T [rows, intermediate]
  EMBEDSERVE_RETURN_IF_ERROR(cuda::linear(api_, handle_, h, w.gate_up_proj.template as<T>(), gate_up, rows, 2 * I, H));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::silu_mul(gate_up, gate_up + I, 2 * I, act, rows, I, stream_));
  EMBEDSERVE_RETURN_IF_ERROR(cuda::linear(api_, handle_, act, w.down_proj.template as<T>(), h, rows, H, I));
  // hidden_states = residual + mlp(hidden_states)
  EMBEDSERVE_RETURN_IF_ERROR(cuda::add(x, h, rows * H, stream_));
  return Status();
}

}  // namespace

StatusOr<std::unique_ptr<Qwen3CudaModel>> Qwen3CudaModel::load(const ModelConfig& config, const WeightStore& store,
                                                               CudaPrecision precision, size_t max_tokens) {
  const ModelConfig& c = config;
  if (c.num_hidden_layers < 1 || c.hidden_size < 1 || c.head_dim < 2 || c.head_dim % 2 != 0 || c.head_dim > 256 ||
      c.num_key_value_heads < 1 || c.num_attention_heads % c.num_key_value_heads != 0)
    return invalid_argument("config.json describes a Qwen3 shape the CUDA backend cannot run (layers " +
                            std::to_string(c.num_hidden_layers) + ", heads " + std::to_string(c.num_attention_heads) +
                            ", kv heads " + std::to_string(c.num_key_value_heads) + ", head_dim " +
                            std::to_string(c.head_dim) + "; head_dim must be even and at most 256)");
  if (max_tokens == 0) return invalid_argument("the batch token budget must be at least 1");
  EMBEDSERVE_ASSIGN_OR_RETURN(const cuda::CublasApi* api, cuda::load_cublas());
  if (precision == CudaPrecision::kF32) {
    auto m = std::make_unique<Model<float>>(config, *api, precision);
    EMBEDSERVE_RETURN_IF_ERROR(m->load(store, max_tokens));
    return std::unique_ptr<Qwen3CudaModel>(std::move(m));
  }
  auto m = std::make_unique<Model<__nv_bfloat16>>(config, *api, precision);
  EMBEDSERVE_RETURN_IF_ERROR(m->load(store, max_tokens));
  return std::unique_ptr<Qwen3CudaModel>(std::move(m));
}

}  // namespace embedserve
