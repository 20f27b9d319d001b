// Request parsing tests: every accepted input shape, and every schema error with its status, code and param.
#include "server/request_parsing.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

constexpr int64_t kHidden = 1024;  // the model's hidden size: the largest `dimensions`

EmbedParams parse_ok(std::string_view body) {
  EmbedParams p;
  auto e = parse_openai_embedding_request(body, 4, kHidden, p);
  EXPECT_FALSE(e) << body << " → " << (e ? e->message : "");
  return p;
}

TEST(OpenAiParsing, AcceptsEveryInputShape) {
  auto one = parse_ok(R"({"input": "hello", "model": "m"})");
  ASSERT_EQ(one.inputs.size(), 1u);
  EXPECT_FALSE(one.inputs[0].is_ids);
  EXPECT_EQ(one.inputs[0].text, "hello");
  EXPECT_EQ(one.model, "m");

  auto many = parse_ok(R"({"input": ["a", "b c"]})");
  ASSERT_EQ(many.inputs.size(), 2u);
  EXPECT_EQ(many.inputs[1].text, "b c");

  auto ids = parse_ok(R"({"input": [1, 2, 3]})");
  ASSERT_EQ(ids.inputs.size(), 1u);
  EXPECT_TRUE(ids.inputs[0].is_ids);
  EXPECT_EQ(ids.inputs[0].ids, (std::vector<int32_t>{1, 2, 3}));

  auto nested = parse_ok(R"({"input": [[5], [6, 7]]})");
  ASSERT_EQ(nested.inputs.size(), 2u);
  EXPECT_EQ(nested.inputs[1].ids, (std::vector<int32_t>{6, 7}));
}

TEST(OpenAiParsing, LongListsOfIdsKeepTheirCountAndBothEndsOnly) {
  // 1,000,000 ids with a cap of 4: the count, the first 4 and the last 4 (for truncation from either side).
  std::string body = R"({"input": [)";
  for (int i = 0; i < 1'000'000; ++i) body += std::to_string(i % 1000) + ",";
  body.back() = ']';
  body += "}";
  EmbedParams p;
  ASSERT_FALSE(parse_openai_embedding_request(body, 4, kHidden, p, 4));
  ASSERT_EQ(p.inputs.size(), 1u);
  EXPECT_EQ(p.inputs[0].ids_sent, 1'000'000u);
  EXPECT_EQ(p.inputs[0].ids, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(p.inputs[0].ids_tail, (std::vector<int32_t>{996, 997, 998, 999}));

  EmbedParams within;  // at the cap: everything, no tail
  ASSERT_FALSE(parse_openai_embedding_request(R"({"input": [[7, 8, 9, 10], [1]]})", 4, kHidden, within, 4));
  EXPECT_EQ(within.inputs[0].ids, (std::vector<int32_t>{7, 8, 9, 10}));
  EXPECT_EQ(within.inputs[0].ids_sent, 4u);
  EXPECT_TRUE(within.inputs[0].ids_tail.empty());

  EmbedParams tail_wraps;  // 6 ids, cap 4: the ring of the last 4 comes back in order
  ASSERT_FALSE(parse_openai_embedding_request(R"({"input": [1, 2, 3, 4, 5, 6]})", 4, kHidden, tail_wraps, 4));
  EXPECT_EQ(tail_wraps.inputs[0].ids_tail, (std::vector<int32_t>{3, 4, 5, 6}));

  // Too many strings are counted, not stored: the message gives the real count.
  std::string strings = R"({"input": [)";
  for (int i = 0; i < 100'000; ++i) strings += R"("a",)";
  strings.back() = ']';
  strings += "}";
  EmbedParams many;
  auto e = parse_openai_embedding_request(strings, 4, kHidden, many, 4);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, "too_many_inputs");
  EXPECT_NE(e->message.find("has 100000 inputs"), std::string::npos) << e->message;

  EmbedParams bad;  // an id past int32, wherever it is, is named as sent
  e = parse_openai_embedding_request(R"({"input": [1, 2, 3, 4, 5, 4294967296]})", 4, kHidden, bad, 4);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("4294967296"), std::string::npos) << e->message;
}

TEST(OpenAiParsing, ReadsOptionsAndExtensions) {
  auto p = parse_ok(R"({"input": "x", "dimensions": 64, "encoding_format": "base64", "user": "u",
                        "prompt_name": "query", "truncate": true, "unknown_field": {"ignored": 1}})");
  EXPECT_EQ(p.dimensions, 64);
  EXPECT_TRUE(p.base64);
  EXPECT_EQ(p.prompt_name, "query");
  EXPECT_TRUE(p.truncate);
  EXPECT_FALSE(p.normalize.has_value());
  auto q = parse_ok(R"({"input": "x", "encoding_format": "float", "instruction": "Find docs", "dimensions": null})");
  EXPECT_FALSE(q.base64);
  EXPECT_EQ(q.instruction, "Find docs");
  EXPECT_FALSE(q.dimensions);
}

struct BadCase {
  const char* body;
  const char* param;
  const char* code;
};

TEST(OpenAiParsing, EveryMalformedRequestIsA400NamingTheField) {
  const BadCase cases[] = {
      {"", "", "invalid_json"},
      {"{", "", "invalid_json"},
      {"[1]", "", "invalid_json"},
      {R"({"input": "a\ud800b"})", "", "invalid_json"},   // lone surrogate
      {"{\"input\": \"\xff\"}", "", "invalid_json"},       // raw byte that is not UTF-8
      {R"({})", "input", "missing_field"},
      {R"({"input": null})", "input", "missing_field"},
      {R"({"input": 5})", "input", "invalid_type"},
      {R"({"input": {"a": 1}})", "input", "invalid_type"},
      {R"({"input": []})", "input", "invalid_value"},
      {R"({"input": ""})", "input", "invalid_value"},
      {R"({"input": ["a", ""]})", "input", "invalid_value"},
      {R"({"input": ["a", 1]})", "input", "invalid_type"},
      {R"({"input": [[1], "a"]})", "input", "invalid_type"},
      {R"({"input": [[1], []]})", "input", "invalid_value"},
      {R"({"input": [1, 2.5]})", "input", "invalid_type"},
      {R"({"input": [1, true]})", "input", "invalid_type"},
      {R"({"input": [-1]})", "input", "invalid_value"},
      {R"({"input": [4294967296]})", "input", "invalid_value"},
      {R"({"input": ["a", "b", "c", "d", "e"]})", "input", "too_many_inputs"},
      {R"({"input": "a", "model": 3})", "model", "invalid_type"},
      {R"({"input": "a", "dimensions": "64"})", "dimensions", "invalid_type"},
      {R"({"input": "a", "dimensions": 6.5})", "dimensions", "invalid_type"},
      {R"({"input": "a", "dimensions": 0})", "dimensions", "invalid_value"},
      {R"({"input": "a", "dimensions": 1025})", "dimensions", "invalid_value"},
      {R"({"input": "a", "dimensions": 18446744073709551615})", "dimensions", "invalid_value"},
      {R"({"input": "a", "dimensions": -9223372036854775808})", "dimensions", "invalid_value"},
      {R"({"input": "a", "encoding_format": "int8"})", "encoding_format", "invalid_value"},
      {R"({"input": "a", "encoding_format": 1})", "encoding_format", "invalid_type"},
      {R"({"input": "a", "user": 1})", "user", "invalid_type"},
      {R"({"input": "a", "truncate": "yes"})", "truncate", "invalid_type"},
      {R"({"input": "a", "prompt_name": []})", "prompt_name", "invalid_type"},
  };
  for (const auto& c : cases) {
    EmbedParams p;
    auto e = parse_openai_embedding_request(c.body, 4, kHidden, p);
    ASSERT_TRUE(e) << c.body;
    EXPECT_EQ(e->status, 400) << c.body;
    EXPECT_EQ(e->type, "invalid_request_error") << c.body;
    EXPECT_EQ(e->param, c.param) << c.body;
    EXPECT_EQ(e->code, c.code) << c.body << ": " << e->message;
  }
}

TEST(OpenAiParsing, DimensionsOutOfRangeQuoteTheRangeAndTheValueAsSent) {
  for (const char* value : {"0", "1025", "9223372036854775808", "18446744073709551615", "-5"}) {
    EmbedParams p;
    auto e = parse_openai_embedding_request(std::string(R"({"input": "a", "dimensions": )") + value + "}", 4, kHidden, p);
    ASSERT_TRUE(e) << value;
    EXPECT_EQ(e->message, std::string("'dimensions' must be between 1 and 1024, got ") + value);
  }
}

TEST(TeiParsing, ReadsTeiFields) {
  EmbedParams p;
  ASSERT_FALSE(parse_tei_embed_request(
      R"({"inputs": ["a", "b"], "normalize": false, "truncate": true, "truncation_direction": "Left", "dimensions": 8})",
      4, kHidden, p));
  EXPECT_EQ(p.inputs.size(), 2u);
  EXPECT_EQ(p.normalize, false);
  EXPECT_TRUE(p.truncate);
  EXPECT_TRUE(p.truncate_left);
  EXPECT_EQ(p.dimensions, 8);
  EmbedParams q;
  ASSERT_FALSE(parse_tei_embed_request(R"({"inputs": "a"})", 4, kHidden, q));
  EXPECT_EQ(q.normalize, true);
  EXPECT_FALSE(q.truncate_left);
  EmbedParams r;
  auto e = parse_tei_embed_request(R"({"inputs": "a", "truncation_direction": "Middle"})", 4, kHidden, r);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "truncation_direction");
  EmbedParams s;
  e = parse_tei_embed_request(R"({"input": "a"})", 4, kHidden, s);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "inputs");
}

TEST(TokenizeParsing, SingleAndBatchedPrompts) {
  TokenizeParams one;
  ASSERT_FALSE(parse_tokenize_request(R"({"prompt": "hi", "add_special_tokens": false})", 4, one));
  EXPECT_FALSE(one.batched);
  EXPECT_FALSE(one.add_special_tokens);
  EXPECT_EQ(one.texts, std::vector<std::string>{"hi"});
  TokenizeParams many;
  ASSERT_FALSE(parse_tokenize_request(R"({"input": ["a", "b"], "model": "m"})", 4, many));
  EXPECT_TRUE(many.batched);
  EXPECT_TRUE(many.add_special_tokens);
  EXPECT_EQ(many.texts.size(), 2u);
  TokenizeParams ids;
  auto e = parse_tokenize_request(R"({"prompt": [1, 2]})", 4, ids);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->param, "prompt");
}

}  // namespace
}  // namespace embedserve
