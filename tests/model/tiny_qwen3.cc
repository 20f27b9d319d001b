// Writes a tiny random Qwen3 checkpoint in Hugging Face layout (config.json, safetensors, sentence-transformers files).
#include "tiny_qwen3.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "op_test_util.h"

namespace embedserve::testing {
namespace {

using nlohmann::json;

uint16_t to_bf16(float f) {  // round to nearest even, as torch's .to(torch.bfloat16)
  uint32_t u = std::bit_cast<uint32_t>(f);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

void write_text(const std::filesystem::path& p, const std::string& s) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

}  // namespace

TinyQwen3 write_tiny_qwen3(const std::filesystem::path& dir, const TinyQwen3Spec& s, const std::string& drop) {
  TinyQwen3 m;
  m.spec = s;
  std::mt19937 rng(s.seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::pair<std::string, std::vector<int64_t>>> order;  // file layout order
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float scale, float offset) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = offset + scale * normal(rng);
    m.weights[name] = std::move(v);
    order.emplace_back(name, std::move(shape));
  };
  const int64_t H = s.hidden, I = s.intermediate, hd = s.head_dim;
  const int64_t qd = int64_t{s.heads} * hd, kvd = int64_t{s.kv_heads} * hd;
  add("embed_tokens.weight", {s.vocab, H}, 1.0f, 0.0f);
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    // Linear weights ~ N(0, 1/in) keep activations O(1) through the layers, like a trained model's.
    add(p + "input_layernorm.weight", {H}, 0.2f, 1.0f);
    add(p + "self_attn.q_proj.weight", {qd, H}, 1.0f / std::sqrt(float(H)), 0.0f);
    add(p + "self_attn.k_proj.weight", {kvd, H}, 1.0f / std::sqrt(float(H)), 0.0f);
    add(p + "self_attn.v_proj.weight", {kvd, H}, 1.0f / std::sqrt(float(H)), 0.0f);
    add(p + "self_attn.o_proj.weight", {H, qd}, 1.0f / std::sqrt(float(qd)), 0.0f);
    add(p + "self_attn.q_norm.weight", {hd}, 0.2f, 1.0f);
    add(p + "self_attn.k_norm.weight", {hd}, 0.2f, 1.0f);
    add(p + "post_attention_layernorm.weight", {H}, 0.2f, 1.0f);
    add(p + "mlp.gate_proj.weight", {I, H}, 1.0f / std::sqrt(float(H)), 0.0f);
    add(p + "mlp.up_proj.weight", {I, H}, 1.0f / std::sqrt(float(H)), 0.0f);
    add(p + "mlp.down_proj.weight", {H, I}, 1.0f / std::sqrt(float(I)), 0.0f);
  }
  add("norm.weight", {H}, 0.2f, 1.0f);

  // Round to the stored dtype; the reference sees exactly the stored values.
  const size_t elem = s.dtype == "F32" ? 4 : 2;
  json header = json::object();
  std::string data;
  for (const auto& [name, shape] : order) {
    auto& v = m.weights[name];
    if (name == drop) continue;
    const size_t begin = data.size();
    for (auto& x : v) {
      if (s.dtype == "F32") {
        data.append(reinterpret_cast<const char*>(&x), 4);
      } else if (s.dtype == "BF16") {
        const uint16_t b = to_bf16(x);
        x = std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
        data.append(reinterpret_cast<const char*>(&b), 2);
      } else {
        const _Float16 h = static_cast<_Float16>(x);
        x = static_cast<float>(h);
        data.append(reinterpret_cast<const char*>(&h), 2);
      }
    }
    header[(s.model_prefix ? "model." : "") + name] = {
        {"dtype", s.dtype}, {"shape", shape}, {"data_offsets", {begin, begin + v.size() * elem}}};
  }
  const std::string h = header.dump();
  const uint64_t hlen = h.size();
  std::string file(reinterpret_cast<const char*>(&hlen), 8);
  write_text(dir / "model.safetensors", file + h + data);

  const char* torch_dtype = s.dtype == "F32" ? "float32" : (s.dtype == "BF16" ? "bfloat16" : "float16");
  json config = {{"architectures", {s.model_prefix ? "Qwen3ForCausalLM" : "Qwen3Model"}},
                 {"model_type", "qwen3"},
                 {"hidden_size", s.hidden},
                 {"intermediate_size", s.intermediate},
                 {"num_hidden_layers", s.layers},
                 {"num_attention_heads", s.heads},
                 {"num_key_value_heads", s.kv_heads},
                 {"head_dim", s.head_dim},
                 {"rms_norm_eps", s.rms_norm_eps},
                 {"rope_theta", s.rope_theta},
                 {"max_position_embeddings", s.max_position},
                 {"vocab_size", s.vocab},
                 {"tie_word_embeddings", false},
                 {"hidden_act", "silu"},
                 {"torch_dtype", torch_dtype}};
  write_text(dir / "config.json", config.dump(2));

  json modules = json::array({{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                              {{"idx", 1}, {"name", "1"}, {"path", "1_Pooling"}, {"type", "sentence_transformers.models.Pooling"}}});
  if (s.normalize)
    modules.push_back({{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}});
  write_text(dir / "modules.json", modules.dump(2));
  json pooling = {{"word_embedding_dimension", s.hidden},
                  {"pooling_mode_cls_token", s.pooling == "cls"},
                  {"pooling_mode_mean_tokens", s.pooling == "mean"},
                  {"pooling_mode_max_tokens", false},
                  {"pooling_mode_mean_sqrt_len_tokens", false},
                  {"pooling_mode_weightedmean_tokens", false},
                  {"pooling_mode_lasttoken", s.pooling == "lasttoken"},
                  {"include_prompt", true}};
  write_text(dir / "1_Pooling" / "config.json", pooling.dump(2));
  if (s.normalize) std::filesystem::create_directories(dir / "2_Normalize");
  return m;
}

std::vector<int32_t> random_ids(size_t n, int vocab, uint32_t seed) { return random_ints(n, vocab, seed); }

}  // namespace embedserve::testing
