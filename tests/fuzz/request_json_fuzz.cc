// libFuzzer target: arbitrary bytes as the JSON body of /v1/embeddings, /embed and /tokenize
// (server/request_parsing.h). Besides crashes and UB (the sanitizers), it checks that an accepted request
// holds only what the schemas allow, and that every error answer is valid JSON in OpenAI's and TEI's shapes.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/utf8.h"
#include "server/request_parsing.h"

namespace {

using embedserve::ApiError;
using embedserve::EmbedParams;

constexpr size_t kMaxInputs = 8;
constexpr size_t kMaxIds = 5;  // small, so lists past the cap (first and last ids kept) are common
constexpr int64_t kHidden = 64;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

void check_error(const ApiError& e) {
  check(e.status == 400 && !e.message.empty() && !e.code.empty());
  for (auto shape : {embedserve::ErrorShape::kOpenAi, embedserve::ErrorShape::kTei}) {
    // The message may quote the request's own bytes: the writer must escape them into valid JSON.
    const auto body = nlohmann::json::parse(embedserve::error_response(e, shape).body, nullptr, false);
    check(body.is_object() && body.contains("error"));
  }
}

void check_params(const EmbedParams& p) {
  check(!p.inputs.empty() && p.inputs.size() <= kMaxInputs);
  for (const auto& in : p.inputs) {
    if (in.is_ids) {
      check(!in.ids.empty());
      for (int32_t id : in.ids) check(id >= 0);
      // A list past the cap keeps its first and last kMaxIds ids and the count; one within it keeps them all.
      check(in.ids_sent >= in.ids.size() && in.ids.size() <= kMaxIds && !in.ids.empty());
      check(in.ids_sent > kMaxIds ? in.ids_tail.size() == kMaxIds : in.ids_tail.empty() && in.ids_sent == in.ids.size());
    } else {
      check(!in.text.empty() && embedserve::validate_utf8(in.text).ok());
    }
  }
  if (p.dimensions) check(*p.dimensions >= 1 && *p.dimensions <= kHidden);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  EmbedParams openai;
  if (auto e = embedserve::parse_openai_embedding_request(body, kMaxInputs, kHidden, openai, kMaxIds)) check_error(*e);
  else check_params(openai);
  EmbedParams tei;
  if (auto e = embedserve::parse_tei_embed_request(body, kMaxInputs, kHidden, tei, kMaxIds)) check_error(*e);
  else check_params(tei);
  embedserve::TokenizeParams tokenize;
  if (auto e = embedserve::parse_tokenize_request(body, kMaxInputs, tokenize)) {
    check_error(*e);
  } else {
    check(!tokenize.texts.empty() && tokenize.texts.size() <= kMaxInputs);
    for (const auto& t : tokenize.texts) check(!t.empty() && embedserve::validate_utf8(t).ok());
  }
  return 0;
}
