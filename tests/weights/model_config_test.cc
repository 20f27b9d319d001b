// load_model_config: the real Qwen3-Embedding configs, transformers 4.x and 5.x spellings, and every error.
#include "weights/model_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_files.h"

namespace embedserve {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::write_file;

const std::filesystem::path kConfigs = std::filesystem::path(EMBEDSERVE_TEST_DATA_DIR) / "configs";

TEST(ModelConfigTest, RealQwen3Embedding06B) {
  auto c = load_model_config(kConfigs / "0.6B" / "config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c->model_type, "qwen3");
  EXPECT_EQ(c->hidden_size, 1024);
  EXPECT_EQ(c->intermediate_size, 3072);
  EXPECT_EQ(c->num_hidden_layers, 28);
  EXPECT_EQ(c->num_attention_heads, 16);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);  // not hidden / heads (= 64)
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c->rope_theta, 1000000.0);
  EXPECT_EQ(c->max_position_embeddings, 32768);
  EXPECT_EQ(c->vocab_size, 151665);
  EXPECT_TRUE(c->tie_word_embeddings);
  EXPECT_EQ(c->dtype, DType::kBF16);
}

TEST(ModelConfigTest, RealQwen3Embedding4B) {
  auto c = load_model_config(kConfigs / "4B" / "config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->hidden_size, 2560);
  EXPECT_EQ(c->intermediate_size, 9728);
  EXPECT_EQ(c->num_hidden_layers, 36);
  EXPECT_EQ(c->num_attention_heads, 32);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->max_position_embeddings, 40960);
  EXPECT_TRUE(c->tie_word_embeddings);
}

TEST(ModelConfigTest, RealQwen3Embedding8B) {
  auto c = load_model_config(kConfigs / "8B" / "config.json");
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->hidden_size, 4096);
  EXPECT_EQ(c->intermediate_size, 12288);
  EXPECT_EQ(c->num_hidden_layers, 36);
  EXPECT_EQ(c->num_attention_heads, 32);
  EXPECT_EQ(c->num_key_value_heads, 8);
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->vocab_size, 151665);
}

// A tiny Qwen3 config as transformers 4.x writes it.
json tiny4() {
  return {{"architectures", {"Qwen3Model"}},
          {"model_type", "qwen3"},
          {"hidden_size", 64},
          {"intermediate_size", 96},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 2},
          {"head_dim", 24},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", 5000.0},
          {"rope_scaling", nullptr},
          {"max_position_embeddings", 512},
          {"vocab_size", 300},
          {"tie_word_embeddings", false},
          {"torch_dtype", "float32"}};
}

class ModelConfigFileTest : public ::testing::Test {
 protected:
  StatusOr<ModelConfig> load(const json& j) {
    write_file(dir_ / "config.json", j.dump(2));
    return load_model_config(dir_ / "config.json");
  }
  // Loads `j` and expects an error of `code` whose message contains `needle` and the file name.
  void expect_error(const json& j, ErrorCode code, const std::string& needle) {
    auto c = load(j);
    ASSERT_FALSE(c.ok()) << "expected an error containing: " << needle;
    EXPECT_EQ(c.status().code(), code) << c.status().to_string();
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().to_string();
    EXPECT_NE(c.status().message().find("config.json"), std::string::npos) << c.status().to_string();
  }
  TempDir dir_;
};

TEST_F(ModelConfigFileTest, Transformers4Layout) {
  auto c = load(tiny4());
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, "Qwen3Model");
  EXPECT_EQ(c->head_dim, 24);
  EXPECT_DOUBLE_EQ(c->rope_theta, 5000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_EQ(c->dtype, DType::kF32);
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST_F(ModelConfigFileTest, Transformers5Layout) {
  json j = tiny4();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j.erase("torch_dtype");
  j["rope_parameters"] = {{"rope_theta", 123456.0}, {"rope_type", "default"}};
  j["dtype"] = "float16";
  j["layer_types"] = {"full_attention", "full_attention"};
  auto c = load(j);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_DOUBLE_EQ(c->rope_theta, 123456.0);
  EXPECT_EQ(c->dtype, DType::kF16);
}

TEST_F(ModelConfigFileTest, DefaultsWhenOptionalFieldsAreAbsent) {
  json j = tiny4();
  for (const char* k : {"head_dim", "num_key_value_heads", "rope_theta", "rms_norm_eps", "torch_dtype",
                        "tie_word_embeddings", "architectures"})
    j.erase(k);
  auto c = load(j);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->head_dim, 16);             // hidden / heads
  EXPECT_EQ(c->num_key_value_heads, 4);   // = heads
  EXPECT_DOUBLE_EQ(c->rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-6);
  EXPECT_EQ(c->dtype, DType::kF32);
  EXPECT_EQ(c->architecture, "Qwen3Model");
}

TEST_F(ModelConfigFileTest, CausalLmArchitectureAccepted) {
  json j = tiny4();
  j["architectures"] = {"Qwen3ForCausalLM"};
  j["torch_dtype"] = "bfloat16";
  auto c = load(j);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->architecture, "Qwen3ForCausalLM");
  EXPECT_EQ(c->dtype, DType::kBF16);
}

TEST_F(ModelConfigFileTest, ArchitectureWithoutModelType) {
  json j = tiny4();
  j.erase("model_type");
  auto c = load(j);
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->model_type, "qwen3");
  j.erase("architectures");
  expect_error(j, ErrorCode::kUnimplemented, "model_type \"\"");
}

TEST_F(ModelConfigFileTest, UnsupportedArchitectureNamed) {
  json j = tiny4();
  j["architectures"] = {"LlamaForCausalLM"};
  j["model_type"] = "llama";
  expect_error(j, ErrorCode::kUnimplemented, "LlamaForCausalLM");
  j = tiny4();
  j["model_type"] = "qwen2";
  expect_error(j, ErrorCode::kUnimplemented, "qwen2");
  j = tiny4();
  j["architectures"] = {"Qwen3MoeForCausalLM"};
  expect_error(j, ErrorCode::kUnimplemented, "Qwen3MoeForCausalLM");
}

TEST_F(ModelConfigFileTest, UnsupportedFeaturesNamed) {
  json j = tiny4();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  expect_error(j, ErrorCode::kUnimplemented, "rope_scaling");
  j = tiny4();
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_theta", 1e6}, {"rope_type", "yarn"}};
  expect_error(j, ErrorCode::kUnimplemented, "yarn");
  j = tiny4();
  j["attention_bias"] = true;
  expect_error(j, ErrorCode::kUnimplemented, "attention_bias");
  j = tiny4();
  j["use_sliding_window"] = true;
  expect_error(j, ErrorCode::kUnimplemented, "use_sliding_window");
  j = tiny4();
  j["hidden_act"] = "gelu";
  expect_error(j, ErrorCode::kUnimplemented, "gelu");
  j = tiny4();
  j["layer_types"] = {"full_attention", "sliding_attention"};
  expect_error(j, ErrorCode::kUnimplemented, "layer_types[1]");
  j = tiny4();
  j["layer_types"] = {"full_attention"};
  expect_error(j, ErrorCode::kInvalidArgument, "one entry per layer");
  j = tiny4();
  j["torch_dtype"] = "float64";
  expect_error(j, ErrorCode::kUnimplemented, "float64");
}

TEST_F(ModelConfigFileTest, SanityChecks) {
  json j = tiny4();
  j["num_key_value_heads"] = 3;
  expect_error(j, ErrorCode::kInvalidArgument, "num_key_value_heads 3");
  j = tiny4();
  j["hidden_size"] = 0;
  expect_error(j, ErrorCode::kInvalidArgument, "hidden_size");
  j = tiny4();
  j["vocab_size"] = -5;
  expect_error(j, ErrorCode::kInvalidArgument, "vocab_size");
  j = tiny4();
  j["intermediate_size"] = int64_t{1} << 40;
  expect_error(j, ErrorCode::kInvalidArgument, "intermediate_size");
  j = tiny4();
  j["num_hidden_layers"] = "two";
  expect_error(j, ErrorCode::kInvalidArgument, "num_hidden_layers must be an integer");
  j = tiny4();
  j["num_attention_heads"] = 2.5;
  expect_error(j, ErrorCode::kInvalidArgument, "num_attention_heads");
  j = tiny4();
  j.erase("max_position_embeddings");
  expect_error(j, ErrorCode::kInvalidArgument, "missing field max_position_embeddings");
  j = tiny4();
  j["head_dim"] = 23;
  expect_error(j, ErrorCode::kInvalidArgument, "even");
  j = tiny4();
  j.erase("head_dim");
  j["hidden_size"] = 66;
  expect_error(j, ErrorCode::kInvalidArgument, "not divisible");
  j = tiny4();
  j["rms_norm_eps"] = 0;
  expect_error(j, ErrorCode::kInvalidArgument, "rms_norm_eps");
  j = tiny4();
  j["rope_theta"] = -1;
  expect_error(j, ErrorCode::kInvalidArgument, "rope_theta");
  j = tiny4();
  j["rope_parameters"] = {{"rope_theta", 7.0}};
  expect_error(j, ErrorCode::kInvalidArgument, "disagrees");
  j = tiny4();
  j["tie_word_embeddings"] = "yes";
  expect_error(j, ErrorCode::kInvalidArgument, "tie_word_embeddings");
  expect_error(json::array({1, 2}), ErrorCode::kInvalidArgument, "JSON object");
}

TEST_F(ModelConfigFileTest, MissingAndCorruptFiles) {
  auto missing = load_model_config(dir_ / "nope" / "config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope/config.json"), std::string::npos);

  std::string text = tiny4().dump();
  write_file(dir_ / "config.json", text.substr(0, text.size() / 2));  // truncated
  auto truncated = load_model_config(dir_ / "config.json");
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.status().code(), ErrorCode::kDataLoss);
  EXPECT_NE(truncated.status().message().find("config.json"), std::string::npos);
}

}  // namespace
}  // namespace embedserve

namespace embedserve {
namespace {

class QuantizationConfigTest : public ModelConfigFileTest {
 protected:
  json with(const json& q) {
    json j = tiny4();
    j["quantization_config"] = q;
    return j;
  }
  static json ct_group(const json& weights, const json& inputs) {
    return {{"quant_method", "compressed-tensors"},
            {"format", "float-quantized"},
            {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}, {"input_activations", inputs}}}}}};
  }
};

TEST_F(QuantizationConfigTest, TheFp8LayoutsSglangAndVllmReadAreAccepted) {
  auto none = load(tiny4());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->quantization, Quantization::kNone);
  auto vllm = load(with({{"quant_method", "fp8"}, {"activation_scheme", "dynamic"}}));
  ASSERT_TRUE(vllm.ok()) << vllm.status().to_string();
  EXPECT_EQ(vllm->quantization, Quantization::kFp8);
  const json w = {{"num_bits", 8}, {"type", "float"}, {"strategy", "channel"}, {"dynamic", false}, {"symmetric", true}};
  const json in = {{"num_bits", 8}, {"type", "float"}, {"strategy", "token"}, {"dynamic", true}, {"symmetric", true}};
  auto fp8_dynamic = load(with(ct_group(w, in)));
  ASSERT_TRUE(fp8_dynamic.ok()) << fp8_dynamic.status().to_string();
  EXPECT_EQ(fp8_dynamic->quantization, Quantization::kFp8);
  auto weight_only = load(with(ct_group(w, nullptr)));
  ASSERT_TRUE(weight_only.ok()) << weight_only.status().to_string();
  EXPECT_NE(weight_only->quantization_layout.find("weight-only"), std::string::npos);
}

TEST_F(QuantizationConfigTest, OtherLayoutsAreRefusedByName) {
  expect_error(with({{"quant_method", "fp8"}, {"activation_scheme", "static"}}), ErrorCode::kUnimplemented,
               "activation_scheme \"static\"");
  expect_error(with({{"quant_method", "fp8"}, {"weight_block_size", {128, 128}}}), ErrorCode::kUnimplemented,
               "weight_block_size [128, 128]");
  expect_error(with({{"quant_method", "gptq"}, {"bits", 4}}), ErrorCode::kUnimplemented, "quant_method \"gptq\"");
  const json w = {{"num_bits", 8}, {"type", "float"}, {"strategy", "channel"}, {"dynamic", false}};
  const json in = {{"num_bits", 8}, {"type", "float"}, {"strategy", "token"}, {"dynamic", true}};
  json int8 = w;
  int8["type"] = "int";
  expect_error(with(ct_group(int8, in)), ErrorCode::kUnimplemented, "only 8-bit float");
  json group = w;
  group["strategy"] = "group";
  expect_error(with(ct_group(group, in)), ErrorCode::kUnimplemented, "strategy \"group\"");
  json static_in = in;
  static_in["dynamic"] = false;
  expect_error(with(ct_group(w, static_in)), ErrorCode::kUnimplemented, "static input scales");
  json packed = ct_group(w, in);
  packed["format"] = "pack-quantized";
  expect_error(with(packed), ErrorCode::kUnimplemented, "format \"pack-quantized\"");
}

}  // namespace
}  // namespace embedserve
