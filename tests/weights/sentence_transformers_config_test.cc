// load_sentence_transformers_config: the real Qwen3-Embedding files, defaults, other modes and every error.
#include "weights/sentence_transformers_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_files.h"

namespace embedserve {
namespace {

using nlohmann::json;
using testing::TempDir;
using testing::write_file;

const std::filesystem::path kConfigs = std::filesystem::path(EMBEDSERVE_TEST_DATA_DIR) / "configs";
const char* kQueryPrompt = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:";

TEST(SentenceTransformersConfigTest, RealQwen3EmbeddingFiles) {
  for (const char* size : {"0.6B", "4B", "8B"}) {
    SCOPED_TRACE(size);
    auto c = load_sentence_transformers_config(kConfigs / size);
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    EXPECT_EQ(c->pooling, Pooling::kLastToken);
    EXPECT_TRUE(c->normalize);
    ASSERT_EQ(c->prompts.size(), 2u);
    EXPECT_EQ(c->prompts.at("query"), kQueryPrompt);
    EXPECT_EQ(c->prompts.at("document"), "");
    EXPECT_FALSE(c->default_prompt_name.has_value());
  }
}

json modules(bool normalize, const std::string& pooling_path = "1_Pooling") {
  json m = json::array({{{"idx", 0}, {"name", "0"}, {"path", ""}, {"type", "sentence_transformers.models.Transformer"}},
                        {{"idx", 1}, {"name", "1"}, {"path", pooling_path}, {"type", "sentence_transformers.models.Pooling"}}});
  if (normalize)
    m.push_back({{"idx", 2}, {"name", "2"}, {"path", "2_Normalize"}, {"type", "sentence_transformers.models.Normalize"}});
  return m;
}

json pooling(const std::string& mode) {
  json p = {{"word_embedding_dimension", 64},
            {"pooling_mode_cls_token", false},
            {"pooling_mode_mean_tokens", false},
            {"pooling_mode_max_tokens", false},
            {"pooling_mode_mean_sqrt_len_tokens", false},
            {"pooling_mode_weightedmean_tokens", false},
            {"pooling_mode_lasttoken", false},
            {"include_prompt", true}};
  if (!mode.empty()) p[mode] = true;
  return p;
}

class SentenceTransformersFileTest : public ::testing::Test {
 protected:
  void put(const std::string& name, const json& j) { write_file(dir_ / name, j.dump(2)); }
  StatusOr<SentenceTransformersConfig> load() { return load_sentence_transformers_config(dir_.path()); }
  void expect_error(ErrorCode code, const std::string& needle, const std::string& file) {
    auto c = load();
    ASSERT_FALSE(c.ok()) << "expected an error containing: " << needle;
    EXPECT_EQ(c.status().code(), code) << c.status().to_string();
    EXPECT_NE(c.status().message().find(needle), std::string::npos) << c.status().to_string();
    EXPECT_NE(c.status().message().find(file), std::string::npos) << c.status().to_string();
  }
  TempDir dir_;
};

TEST_F(SentenceTransformersFileTest, NoFilesGivesQwen3EmbeddingDefaults) {
  auto c = load();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->pooling, Pooling::kLastToken);
  EXPECT_TRUE(c->normalize);
  EXPECT_TRUE(c->prompts.empty());
}

TEST_F(SentenceTransformersFileTest, MeanPoolingWithoutNormalize) {
  put("modules.json", modules(false));
  put("1_Pooling/config.json", pooling("pooling_mode_mean_tokens"));
  auto c = load();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->pooling, Pooling::kMean);
  EXPECT_FALSE(c->normalize);
}

TEST_F(SentenceTransformersFileTest, ClsPoolingAtThePathModulesJsonNames) {
  put("modules.json", modules(true, "pool_here"));
  put("pool_here/config.json", pooling("pooling_mode_cls_token"));
  put("1_Pooling/config.json", pooling("pooling_mode_mean_tokens"));  // not named: must be ignored
  auto c = load();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->pooling, Pooling::kCls);
  EXPECT_TRUE(c->normalize);
}

TEST_F(SentenceTransformersFileTest, PoolingWithoutModulesJson) {
  put("1_Pooling/config.json", pooling("pooling_mode_mean_tokens"));
  auto c = load();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->pooling, Pooling::kMean);
  EXPECT_TRUE(c->normalize);
}

TEST_F(SentenceTransformersFileTest, NewStylePoolingModeString) {
  put("1_Pooling/config.json", json{{"pooling_mode", "cls"}});
  auto c = load();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->pooling, Pooling::kCls);
  put("1_Pooling/config.json", json{{"pooling_mode", "max"}});
  expect_error(ErrorCode::kUnimplemented, "\"max\"", "1_Pooling/config.json");
}

TEST_F(SentenceTransformersFileTest, PromptsAndDefault) {
  put("config_sentence_transformers.json",
      json{{"prompts", {{"query", "Q: "}, {"passage", "P: "}}}, {"default_prompt_name", "query"}});
  auto c = load();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  EXPECT_EQ(c->prompts.at("query"), "Q: ");
  EXPECT_EQ(c->prompts.at("passage"), "P: ");
  ASSERT_TRUE(c->default_prompt_name.has_value());
  EXPECT_EQ(*c->default_prompt_name, "query");
}

TEST_F(SentenceTransformersFileTest, UnsupportedPoolingModesNamed) {
  put("modules.json", modules(true));
  put("1_Pooling/config.json", pooling("pooling_mode_max_tokens"));
  expect_error(ErrorCode::kUnimplemented, "pooling_mode_max_tokens", "1_Pooling/config.json");
  put("1_Pooling/config.json", pooling("pooling_mode_weightedmean_tokens"));
  expect_error(ErrorCode::kUnimplemented, "pooling_mode_weightedmean_tokens", "1_Pooling/config.json");
  json two = pooling("pooling_mode_lasttoken");
  two["pooling_mode_mean_tokens"] = true;
  put("1_Pooling/config.json", two);
  expect_error(ErrorCode::kUnimplemented, "concatenated", "1_Pooling/config.json");
  put("1_Pooling/config.json", pooling(""));
  expect_error(ErrorCode::kInvalidArgument, "no pooling mode", "1_Pooling/config.json");
  json no_prompt = pooling("pooling_mode_mean_tokens");
  no_prompt["include_prompt"] = false;
  put("1_Pooling/config.json", no_prompt);
  expect_error(ErrorCode::kUnimplemented, "include_prompt", "1_Pooling/config.json");
}

TEST_F(SentenceTransformersFileTest, ModulesErrors) {
  json m = modules(true);
  m.push_back({{"idx", 3}, {"name", "3"}, {"path", "3_Dense"}, {"type", "sentence_transformers.models.Dense"}});
  put("modules.json", m);
  expect_error(ErrorCode::kUnimplemented, "sentence_transformers.models.Dense", "modules.json");

  put("modules.json", json::array({{{"type", "sentence_transformers.models.Transformer"}}}));
  expect_error(ErrorCode::kUnimplemented, "no Pooling module", "modules.json");

  put("modules.json", modules(true, "../outside"));
  expect_error(ErrorCode::kInvalidArgument, "inside the model directory", "modules.json");

  put("modules.json", modules(true, "2_Missing"));
  expect_error(ErrorCode::kNotFound, "2_Missing/config.json", "2_Missing");

  put("modules.json", json{{"not", "a list"}});
  expect_error(ErrorCode::kInvalidArgument, "list of modules", "modules.json");

  write_file(dir_ / "modules.json", "[{\"type\": ");
  expect_error(ErrorCode::kDataLoss, "not valid JSON", "modules.json");
}

TEST_F(SentenceTransformersFileTest, PromptErrors) {
  put("config_sentence_transformers.json", json{{"prompts", {{"query", 5}}}});
  expect_error(ErrorCode::kInvalidArgument, "prompt \"query\"", "config_sentence_transformers.json");
  put("config_sentence_transformers.json", json{{"prompts", {{"query", "Q"}}}, {"default_prompt_name", "other"}});
  expect_error(ErrorCode::kInvalidArgument, "default_prompt_name \"other\"", "config_sentence_transformers.json");
  put("config_sentence_transformers.json", json{{"prompts", "query"}});
  expect_error(ErrorCode::kInvalidArgument, "prompts must be an object", "config_sentence_transformers.json");
  write_file(dir_ / "config_sentence_transformers.json", "{");
  expect_error(ErrorCode::kDataLoss, "not valid JSON", "config_sentence_transformers.json");
}

}  // namespace
}  // namespace embedserve
