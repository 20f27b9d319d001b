// Loading tokenizer.json: a small valid file loads; each unsupported feature is a load error naming it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace embedserve {
namespace {

using json = nlohmann::json;

// A complete Qwen-shaped tokenizer.json over a 256-byte vocabulary plus one merge ("h"+"i").
json minimal() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) {
    std::string tok;
    append_utf8(tokenizer::bytes_to_unicode()[b], tok);
    vocab[tok] = b;
  }
  vocab["hi"] = 256;
  json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}};
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", json::array({json{{"id", 257}, {"content", "<|end|>"}, {"single_word", false},
                                         {"lstrip", false}, {"rstrip", false}, {"normalized", false},
                                         {"special", true}}})},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers", json::array({json{{"type", "Split"},
                                            {"pattern", {{"Regex", std::string(tokenizer::kQwen2SplitPattern)}}},
                                            {"behavior", "Isolated"},
                                            {"invert", false}},
                                       byte_level})}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({json{{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                json{{"SpecialToken", {{"id", "<|end|>"}, {"type_id", 0}}}}})},
        {"special_tokens", {{"<|end|>", {{"id", "<|end|>"}, {"ids", json::array({257})},
                                         {"tokens", json::array({"<|end|>"})}}}}}}},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"byte_fallback", false},
        {"ignore_merges", false}, {"vocab", vocab}, {"merges", json::array({json::array({"h", "i"})})}}},
  };
}

std::filesystem::path write(const json& j, const std::string& name) {
  const auto dir = std::filesystem::path(testing::TempDir()) / ("spec_test_" + name);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << j.dump();
  return dir;
}

// Loads a mutated minimal file and returns the error message ("" when it loads).
std::string load_error(const json& j, const std::string& name) {
  auto tok = Tokenizer::load(write(j, name));
  return tok.ok() ? "" : tok.status().message();
}

TEST(TokenizerSpec, MinimalFileLoadsAndEncodes) {
  auto tok = Tokenizer::load(write(minimal(), "ok"));
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->vocab_size(), 258);
  EXPECT_EQ((*tok)->encode("hi!").value(), (std::vector<int32_t>{256, '!', 257}));
  EXPECT_EQ((*tok)->encode("hi<|end|>", {.add_special_tokens = false}).value(), (std::vector<int32_t>{256, 257}));
}

TEST(TokenizerSpec, UnsupportedFeaturesNameThemselves) {
  json j = minimal();
  j["normalizer"] = {{"type", "Lowercase"}};
  EXPECT_NE(load_error(j, "lowercase").find("normalizer type 'Lowercase' is not supported"), std::string::npos);

  j = minimal();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+";
  EXPECT_NE(load_error(j, "regex").find("Split pattern"), std::string::npos);

  j = minimal();
  j["model"]["type"] = "WordPiece";
  EXPECT_NE(load_error(j, "wordpiece").find("model type 'WordPiece'"), std::string::npos);

  j = minimal();
  j["model"]["dropout"] = 0.1;
  EXPECT_NE(load_error(j, "dropout").find("dropout"), std::string::npos);

  j = minimal();
  j["model"]["byte_fallback"] = true;
  EXPECT_NE(load_error(j, "fallback").find("byte_fallback"), std::string::npos);

  j = minimal();
  j["added_tokens"][0]["lstrip"] = true;
  EXPECT_NE(load_error(j, "lstrip").find("added token '<|end|>' with lstrip=true"), std::string::npos);

  j = minimal();
  j["post_processor"] = {{"type", "RobertaProcessing"}};
  EXPECT_NE(load_error(j, "roberta").find("post_processor type 'RobertaProcessing'"), std::string::npos);

  j = minimal();
  j["decoder"] = {{"type", "WordPiece"}};
  EXPECT_NE(load_error(j, "decoder").find("decoder type 'WordPiece'"), std::string::npos);

  j = minimal();
  j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true;
  EXPECT_NE(load_error(j, "prefix").find("add_prefix_space=true"), std::string::npos);

  j = minimal();
  j["truncation"] = {{"max_length", 8}};
  EXPECT_NE(load_error(j, "truncation").find("truncation"), std::string::npos);
}

TEST(TokenizerSpec, BrokenFilesAreClearErrors) {
  const auto dir = std::filesystem::path(testing::TempDir()) / "spec_test_broken";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << "{ not json";
  auto tok = Tokenizer::load(dir);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), ErrorCode::kDataLoss);

  auto missing = Tokenizer::load(dir / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);

  json j = minimal();
  j["model"]["merges"] = json::array({json::array({"h", "x"})});  // "hx" is not in the vocabulary
  EXPECT_NE(load_error(j, "merge").find("merges[0]"), std::string::npos);

  j = minimal();
  j["added_tokens"][0]["id"] = -5;
  EXPECT_NE(load_error(j, "negative").find("invalid id -5"), std::string::npos);

  j = minimal();
  j["added_tokens"][0]["id"] = 2000000000;  // would size the id tables at 2e9 entries
  EXPECT_NE(load_error(j, "huge").find("implausibly large"), std::string::npos);
}

// model.vocab and model.merges are streamed past the DOM (tokenizer/tokenizer_json.h): each malformed entry is still
// an error naming it, a member given twice keeps the last, "left right" merges still load, and members of the same
// names elsewhere stay in the DOM.
TEST(TokenizerSpec, StreamedVocabAndMergesKeepTheChecksOfTheDom) {
  const auto error_with = [](const std::string& name, const char* member, const json& value) {
    json j = minimal();
    j["model"][member] = value;
    return load_error(j, name);
  };
  json vocab = minimal()["model"]["vocab"];
  for (const auto& [name, bad] : std::vector<std::pair<std::string, json>>{
           {"float", 1.5}, {"negative", -1}, {"huge", 3000000000LL}, {"string", "7"}, {"object", {{"id", 7}}},
           {"array", json::array({7})}, {"null", nullptr}}) {
    json v = vocab;
    v["zz"] = bad;
    EXPECT_NE(error_with("vocab_" + name, "vocab", v).find("model.vocab['zz'] is not a valid id"), std::string::npos)
        << name;
  }
  const json hi = json::array({"h", "i"});
  for (const auto& [name, bad] : std::vector<std::pair<std::string, json>>{
           {"number", 3}, {"one", json::array({"h"})}, {"three", json::array({"h", "i", "x"})},
           {"nested", json::array({json::array({"h"}), "i"})}, {"object", {{"h", "i"}}},
           {"not_a_string", json::array({"h", 1})}}) {
    const std::string error = error_with("merge_" + name, "merges", json::array({hi, bad}));
    EXPECT_NE(error.find("model.merges[1] is not a pair of tokens"), std::string::npos) << name << ": " << error;
  }
  EXPECT_NE(error_with("merge_spaces", "merges", json::array({hi, "h i x"})).find("model.merges[1] is not 'left right'"),
            std::string::npos);
  EXPECT_NE(error_with("vocab_array", "vocab", json::array()).find("needs a 'vocab' object"), std::string::npos);
  EXPECT_NE(error_with("merges_object", "merges", json::object()).find("needs a 'vocab' object"), std::string::npos);

  // "left right" merges, a vocab member given twice (the text below, written by hand: a DOM cannot hold it) and
  // "vocab"/"merges" members outside model: the file loads as the DOM would read it.
  json j = minimal();
  j["model"]["merges"] = json::array({"h i"});
  j["post_processor"]["vocab"] = {{"x", 1}};
  std::string text = j.dump();
  const std::string at = "\"vocab\":{";
  const size_t model_vocab = text.find(at, text.find("\"model\""));
  ASSERT_NE(model_vocab, std::string::npos);
  text.insert(model_vocab, "\"vocab\":{\"zz\":300},");  // a first vocab, replaced by the whole one after it
  const auto dir = std::filesystem::path(testing::TempDir()) / "spec_test_twice";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << text;
  auto tok = Tokenizer::load(dir);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->vocab_size(), 258);
  EXPECT_EQ((*tok)->encode("hi!").value(), (std::vector<int32_t>{256, '!', 257}));
}

TEST(TokenizerSpec, TokenizerConfigMustMatch) {
  const auto dir = write(minimal(), "config");
  std::ofstream(dir / "tokenizer_config.json")
      << R"({"added_tokens_decoder": {"300": {"content": "<|other|>"}}})";
  auto tok = Tokenizer::load(dir);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("different models"), std::string::npos);
  std::ofstream(dir / "tokenizer_config.json") << R"({"split_special_tokens": true})";
  tok = Tokenizer::load(dir);
  ASSERT_FALSE(tok.ok());
  EXPECT_NE(tok.status().message().find("split_special_tokens"), std::string::npos);
}

}  // namespace
}  // namespace embedserve
