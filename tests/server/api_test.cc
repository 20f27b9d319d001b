// API tests through the Router (no sockets): endpoint shapes, every error status, auth, readiness, and
// the vectors themselves checked against what the fake engine computes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "server/base64.h"
#include "test_api.h"
#include "text/matryoshka.h"

namespace embedserve {
namespace {

using nlohmann::json;
using testing::ByteEncoder;
using testing::TestApi;

std::vector<int32_t> byte_ids(std::string_view text) {
  std::vector<int32_t> ids(text.begin(), text.end());
  ids.push_back(ByteEncoder::kEos);
  return ids;
}

std::vector<float> expected(std::span<const int32_t> ids, size_t dims, int hidden = 8) {
  auto v = testing::fake_vector(ids, hidden);
  std::vector<float> out(dims);
  truncate_and_normalize(std::span<const float>(v).first(dims), out);
  return dims == static_cast<size_t>(hidden) ? v : out;
}

void expect_error(const ServerResponse& r, int status, const std::string& code, const std::string& param = "") {
  EXPECT_EQ(r.status, status) << r.body;
  auto j = json::parse(r.body);
  ASSERT_TRUE(j.contains("error")) << r.body;
  EXPECT_EQ(j["error"]["code"], code) << r.body;
  EXPECT_TRUE(j["error"]["message"].is_string());
  EXPECT_TRUE(j["error"]["type"].is_string());
  if (param.empty()) EXPECT_TRUE(j["error"]["param"].is_null()) << r.body;
  else EXPECT_EQ(j["error"]["param"], param) << r.body;
}

TEST(Api, NotReadyUntilTheModelIsPublished) {
  TestApi api;
  auto health = api.call("GET", "/health");
  EXPECT_EQ(health.status, 503);
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": "a"})"), 503, "unavailable");
  EXPECT_EQ(api.call("GET", "/v1/models").status, 200);  // answers from the flags
  api.router->set_ready(api.service.get());
  health = api.call("GET", "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body), json({{"status", "healthy"}}));
}

TEST(Api, EmbeddingsFloatResponse) {
  TestApi api;
  api.router->set_ready(api.service.get());
  auto r = api.call("POST", "/v1/embeddings", R"({"input": ["hello", "hi"], "model": "alias"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "alias");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 6 + 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 6 + 3);
  ASSERT_EQ(j["data"].size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(j["data"][i]["object"], "embedding");
    EXPECT_EQ(j["data"][i]["index"], i);
    auto want = expected(byte_ids(i == 0 ? "hello" : "hi"), 8);
    ASSERT_EQ(j["data"][i]["embedding"].size(), 8u);
    for (int k = 0; k < 8; ++k) EXPECT_EQ(j["data"][i]["embedding"][k].get<float>(), want[k]);
  }
  EXPECT_EQ(r.inputs, 2u);
  EXPECT_EQ(r.tokens, 9u);
}

TEST(Api, EmbeddingsBase64AndDimensions) {
  TestApi api;
  api.router->set_ready(api.service.get());
  auto r = api.call("POST", "/v1/embeddings",
                    R"({"input": [[1, 2, 3]], "model": "qwen3-test", "encoding_format": "base64", "dimensions": 3})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  auto bytes = base64_decode(j["data"][0]["embedding"].get<std::string>());
  ASSERT_TRUE(bytes);
  ASSERT_EQ(bytes->size(), 3 * sizeof(float));
  float got[3];
  std::memcpy(got, bytes->data(), sizeof got);
  const std::vector<int32_t> ids = {1, 2, 3};
  auto want = expected(ids, 3);
  double norm = 0;
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(got[k], want[k]);
    norm += got[k] * got[k];
  }
  EXPECT_NEAR(norm, 1.0, 1e-6);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
}

TEST(Api, PromptsAndInstructionsArePrefixed) {
  TestApi api;
  api.router->set_ready(api.service.get());
  auto named = json::parse(api.call("POST", "/v1/embeddings", R"({"input": "x", "prompt_name": "query"})").body);
  auto plain = json::parse(api.call("POST", "/v1/embeddings", R"({"input": "Q: x"})").body);
  EXPECT_EQ(named["data"][0]["embedding"], plain["data"][0]["embedding"]);
  auto instructed = json::parse(api.call("POST", "/v1/embeddings", R"({"input": "x", "instruction": "Find"})").body);
  auto spelled = json::parse(api.call("POST", "/v1/embeddings", "{\"input\": \"Instruct: Find\\nQuery:x\"}").body);
  EXPECT_EQ(instructed["data"][0]["embedding"], spelled["data"][0]["embedding"]);
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": "x", "prompt_name": "nope"})"), 400, "invalid_value",
               "prompt_name");
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": "x", "prompt_name": "query", "instruction": "y"})"), 400,
               "invalid_value", "instruction");
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": [1, 2], "prompt_name": "query"})"), 400, "invalid_value",
               "prompt_name");
}

TEST(Api, AnotherModelNameMeansTheServedModelUnlessStrict) {
  TestApi lenient;
  lenient.router->set_ready(lenient.service.get());
  auto r = lenient.call("POST", "/v1/embeddings", R"({"input": "a", "model": "Qwen/Qwen3-Embedding-0.6B"})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["model"], "qwen3-test");
  EXPECT_EQ(json::parse(lenient.call("POST", "/v1/embeddings", R"({"input": "a", "model": "alias"})").body)["model"],
            "alias");
  TestApi strict("", 256, 64, 8, /*strict_model_name=*/true);
  strict.router->set_ready(strict.service.get());
  expect_error(strict.call("POST", "/v1/embeddings", R"({"input": "a", "model": "gpt-4"})"), 404, "model_not_found", "model");
  expect_error(strict.call("POST", "/tokenize", R"({"prompt": "a", "model": "gpt-4"})"), 404, "model_not_found", "model");
}

TEST(Api, ModelAndInputChecks) {
  TestApi api;  // max_input_tokens 64, vocab 1000, hidden 8
  api.router->set_ready(api.service.get());
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": "a", "dimensions": 0})"), 400, "invalid_value", "dimensions");
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": "a", "dimensions": 9})"), 400, "invalid_value", "dimensions");
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": [1, 1000]})"), 400, "invalid_value", "input");
  const std::string long_text(100, 'a');
  expect_error(api.call("POST", "/v1/embeddings", "{\"input\": \"" + long_text + "\"}"), 400, "context_length_exceeded",
               "input");
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": ["a")"), 400, "invalid_json");
  std::string many = "[";
  for (int i = 0; i < 17; ++i) many += std::string(i ? "," : "") + "\"a\"";
  expect_error(api.call("POST", "/v1/embeddings", "{\"input\": " + many + "]}"), 400, "too_many_inputs", "input");
  // truncate: the same 100 bytes are cut to 63 content ids + EOS.
  auto r = api.call("POST", "/v1/embeddings", "{\"input\": \"" + long_text + "\", \"truncate\": true}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body)["usage"]["prompt_tokens"], 64);
}

TEST(Api, RoutesMethodsAndAuth) {
  TestApi api("sk-test");
  api.router->set_ready(api.service.get());
  expect_error(api.call("GET", "/nope", "", "Bearer sk-test"), 404, "not_found");
  auto wrong_method = api.call("GET", "/v1/embeddings", "", "Bearer sk-test");
  expect_error(wrong_method, 405, "method_not_allowed");
  ASSERT_EQ(wrong_method.headers.size(), 1u);
  EXPECT_EQ(wrong_method.headers[0], std::make_pair(std::string("Allow"), std::string("POST")));
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": "a"})"), 401, "invalid_api_key");
  expect_error(api.call("POST", "/v1/embeddings", R"({"input": "a"})", "Bearer nope"), 401, "invalid_api_key");
  EXPECT_EQ(api.call("POST", "/v1/embeddings", R"({"input": "a"})", "Bearer sk-test").status, 200);
  EXPECT_EQ(api.call("GET", "/health").status, 200);   // open for load balancers
  EXPECT_EQ(api.call("GET", "/metrics").status, 200);  // open for scrapers
  EXPECT_EQ(api.call("GET", "/v1/models").status, 401);
  auto models = json::parse(api.call("GET", "/v1/models", "", "Bearer sk-test").body);
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 2u);
  EXPECT_EQ(models["data"][0]["id"], "qwen3-test");
  EXPECT_EQ(models["data"][1]["id"], "alias");
  EXPECT_EQ(models["data"][0]["object"], "model");
}

TEST(Api, TokenizeShape) {
  TestApi api;
  api.router->set_ready(api.service.get());
  auto one = json::parse(api.call("POST", "/tokenize", R"({"prompt": "ab"})").body);
  EXPECT_EQ(one["tokens"], json({97, 98, ByteEncoder::kEos}));
  EXPECT_EQ(one["count"], 3);
  EXPECT_EQ(one["max_model_len"], 64);
  auto many = json::parse(api.call("POST", "/tokenize", R"({"prompt": ["a", "bc"], "add_special_tokens": false})").body);
  EXPECT_EQ(many["tokens"], json({{97}, {98, 99}}));
  EXPECT_EQ(many["count"], json({1, 2}));
}

TEST(Api, TeiEmbedAndInfo) {
  TestApi api;
  api.router->set_ready(api.service.get());
  auto r = api.call("POST", "/embed", R"({"inputs": "hello"})");
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = json::parse(r.body);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u);
  auto want = expected(byte_ids("hello"), 8);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(j[0][k].get<float>(), want[k]);
  // Left truncation keeps the end of the text and the appended special token.
  const std::string text = std::string(70, 'a') + "xyz";
  auto left = json::parse(api.call("POST", "/embed", "{\"inputs\": [\"" + text +
                                                         "\"], \"truncate\": true, \"truncation_direction\": \"Left\"}").body);
  std::vector<int32_t> tail(60, 'a');
  tail.insert(tail.end(), {'x', 'y', 'z', ByteEncoder::kEos});
  auto want_left = expected(tail, 8);
  for (int k = 0; k < 8; ++k) EXPECT_EQ(left[0][k].get<float>(), want_left[k]);
  // TEI errors use TEI's shape and TEI's statuses: an empty input is ErrorType::Empty (400), a wrong type axum's
  // 422, an input past the context length ErrorType::Validation (413).
  auto bad = api.call("POST", "/embed", R"({"inputs": []})");
  EXPECT_EQ(bad.status, 400);
  auto b = json::parse(bad.body);
  EXPECT_TRUE(b["error"].is_string());
  EXPECT_EQ(b["error_type"], "Empty");
  auto typed = api.call("POST", "/embed", R"({"inputs": true})");
  EXPECT_EQ(typed.status, 422);
  EXPECT_EQ(json::parse(typed.body)["error_type"], "Validation");
  auto long_input = api.call("POST", "/embed", "{\"inputs\": \"" + std::string(100, 'a') + "\"}");
  EXPECT_EQ(long_input.status, 413);
  EXPECT_EQ(json::parse(long_input.body)["error_type"], "Validation");
  auto info = json::parse(api.call("GET", "/info").body);
  EXPECT_EQ(info["model_id"], "fake");
  EXPECT_EQ(info["model_type"]["embedding"]["pooling"], "last_token");
  EXPECT_EQ(info["max_input_length"], 64);
  EXPECT_EQ(info["max_client_batch_size"], 16);
  EXPECT_EQ(info["max_batch_tokens"], 256);
  EXPECT_EQ(info["model_dtype"], "float32");
}

TEST(Api, QueueFullIs429WithRetryAfter) {
  TestApi api;
  SchedulerOptions so;
  so.max_num_batched_tokens = 256;
  so.queue.max_inputs = 1;
  api.service.reset();
  api.scheduler = std::make_unique<Scheduler>(api.engine, so);
  EmbedServiceConfig cfg;
  cfg.served_names = {"qwen3-test"};
  cfg.max_input_tokens = 64;
  api.service = std::make_unique<EmbedService>(api.encoder, *api.scheduler, api.pool, api.engine.info(), cfg, nullptr);
  api.router->set_ready(api.service.get());
  api.engine.close_gate();
  auto running = std::async(std::launch::async, [&] { return api.call("POST", "/v1/embeddings", R"({"input": "a"})"); });
  api.engine.wait_for_batches(1);
  auto waiting = std::async(std::launch::async, [&] { return api.call("POST", "/v1/embeddings", R"({"input": "b"})"); });
  while (api.scheduler->stats().queued_inputs < 1) std::this_thread::yield();
  auto refused = api.call("POST", "/v1/embeddings", R"({"input": "c"})");
  expect_error(refused, 429, "queue_full");
  ASSERT_EQ(refused.headers.size(), 1u);
  EXPECT_EQ(refused.headers[0].first, "Retry-After");
  api.engine.open_gate();
  EXPECT_EQ(running.get().status, 200);
  EXPECT_EQ(waiting.get().status, 200);
}

TEST(Api, MetricsCountRequestsAndBatches) {
  TestApi api;
  api.router->set_ready(api.service.get());
  api.call("POST", "/v1/embeddings", R"({"input": ["ab", "c"]})");
  api.call("POST", "/v1/embeddings", R"({"input": ""})");
  api.call("GET", "/nowhere");
  const std::string text = api.call("GET", "/metrics").body;
  EXPECT_NE(text.find("embedserve_requests_total{route=\"/v1/embeddings\",status=\"200\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("embedserve_requests_total{route=\"/v1/embeddings\",status=\"400\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("embedserve_requests_total{route=\"other\",status=\"404\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("embedserve_tokens_embedded_total 5\n"), std::string::npos);
  EXPECT_NE(text.find("embedserve_queue_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("embedserve_queue_inputs 0\n"), std::string::npos);
}

}  // namespace
}  // namespace embedserve
