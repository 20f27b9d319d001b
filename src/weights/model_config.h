// ModelConfig: what config.json (transformers 4.x or 5.x) says about a Qwen3 model's shape.
#pragma once

#include <filesystem>
#include <string>

#include "core/status.h"
#include "core/types.h"

namespace embedserve {

struct ModelConfig {
  std::string architecture;        // architectures[0], e.g. "Qwen3ForCausalLM" or "Qwen3Model"
  std::string model_type;          // "qwen3"
  int hidden_size = 0;
  int intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;                // may differ from hidden_size / num_attention_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;     // top-level rope_theta (4.x) or rope_parameters.rope_theta (5.x)
  int max_position_embeddings = 0;
  int vocab_size = 0;              // rows of embed_tokens
  bool tie_word_embeddings = false;
  DType dtype = DType::kBF16;      // torch_dtype (4.x) or dtype (5.x): what the checkpoint declares
  // quantization_config: kFp8 for an FP8 checkpoint read as stored (weights/quantization_config.h), with its
  // layout in words for the start-up line.
  Quantization quantization = Quantization::kNone;
  std::string quantization_layout;
};

// Parses and checks config.json; errors name the file and the field.
StatusOr<ModelConfig> load_model_config(const std::filesystem::path& config_json);

}  // namespace embedserve
