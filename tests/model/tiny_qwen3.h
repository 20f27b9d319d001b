// Test fixture: a tiny random-weight Qwen3 checkpoint written to a directory, plus its weights as the model
// sees them (after bf16/f16 rounding) for the double-precision reference.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace embedserve::testing {

struct TinyQwen3Spec {
  int hidden = 24;
  int intermediate = 40;
  int layers = 2;
  int heads = 4;
  int kv_heads = 2;
  int head_dim = 10;           // ≠ hidden / heads on purpose
  int vocab = 97;
  std::string dtype = "F32";   // "F32", "BF16" or "F16"
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  int max_position = 4096;
  std::string pooling = "lasttoken";  // "lasttoken", "mean", "cls"
  bool normalize = true;
  bool model_prefix = true;    // keys "model.layers.0..." (Qwen3ForCausalLM) or "layers.0..." (Qwen3Model)
  uint32_t seed = 1;
};

struct TinyQwen3 {
  TinyQwen3Spec spec;
  // Weights by name without the "model." prefix, as float values after rounding to spec.dtype.
  std::map<std::string, std::vector<float>> weights;
  const std::vector<float>& w(const std::string& name) const { return weights.at(name); }
};

// Writes config.json, model.safetensors, modules.json, 1_Pooling/config.json (and 2_Normalize when
// spec.normalize) into dir. `drop` names a tensor to leave out (to test the error).
TinyQwen3 write_tiny_qwen3(const std::filesystem::path& dir, const TinyQwen3Spec& spec, const std::string& drop = "");

// n token ids drawn uniformly from [0, vocab), the same for the same seed.
std::vector<int32_t> random_ids(size_t n, int vocab, uint32_t seed);

}  // namespace embedserve::testing
