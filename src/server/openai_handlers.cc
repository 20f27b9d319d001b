// OpenAI-style endpoints: /v1/embeddings, /v1/models, and SGLang's /tokenize.
#include <cmath>
#include <span>

#include "server/base64.h"
#include "server/handlers.h"
#include "server/json_writer.h"

namespace embedserve {

std::optional<ApiError> non_finite_vector_error(const EmbedOutput& out, const std::string& model) {
  for (size_t i = 0; i < out.vectors.size(); ++i) {
    if (std::isfinite(out.vectors[i])) continue;
    return api_error_from_status(internal_error(
        "the model '" + model + "' produced a non-finite value (NaN or Inf) in the vector of input[" +
        std::to_string(out.dims ? i / out.dims : 0) + "]: its weights overflow in the forward pass; the request is "
        "not at fault, the checkpoint is"));
  }
  return std::nullopt;
}

std::string render_openai_embeddings(const EmbedOutput& out, const std::string& model, bool base64) {
  std::string body;
  // One float prints in at most ~13 characters; base64 takes 4/3 of 4 bytes. Reserve once.
  body.reserve(128 + out.n * (48 + out.dims * (base64 ? 6 : 13)) + model.size());
  JsonWriter w(body);
  w.begin_object();
  w.key("object");
  w.string("list");
  w.key("data");
  w.begin_array();
  for (size_t i = 0; i < out.n; ++i) {
    std::span<const float> row(out.vectors.data() + i * out.dims, out.dims);
    w.begin_object();
    w.key("object");
    w.string("embedding");
    w.key("index");
    w.integer(static_cast<int64_t>(i));
    w.key("embedding");
    if (base64) {
      std::string b64 = "\"";
      base64_encode_floats(row, b64);
      b64 += '"';
      w.raw_value(b64);
    } else {
      w.float_array(row);
    }
    w.end_object();
  }
  w.end_array();
  w.key("model");
  w.string(model);
  w.key("usage");
  w.begin_object();
  w.key("prompt_tokens");
  w.integer(static_cast<int64_t>(out.prompt_tokens));
  w.key("total_tokens");
  w.integer(static_cast<int64_t>(out.prompt_tokens));
  w.end_object();
  w.end_object();
  return body;
}

void handle_openai_embeddings(const EmbedService& service, const ServerRequest& req, CancelFlag cancel, Respond respond) {
  EmbedParams params;
  if (auto e = parse_openai_embedding_request(req.body, service.config().max_inputs_per_request,
                                                service.info().hidden_size, params, service.config().max_input_tokens))
    return respond(error_response(*e, ErrorShape::kOpenAi));
  auto model = service.resolve_model(params.model);
  if (!model) {
    std::string names;
    for (const auto& n : service.config().served_names) names += (names.empty() ? "" : ", ") + n;
    return respond(error_response({404, "invalid_request_error", "model_not_found",
                                   "the model '" + *params.model + "' does not exist; this server serves: " + names,
                                   "model", 0},
                                  ErrorShape::kOpenAi));
  }
  const bool base64 = params.base64;
  const size_t n_inputs = params.inputs.size();
  service.embed(std::move(params), std::move(cancel),
                [respond = std::move(respond), model = *model, base64, n_inputs](EmbedOutcome outcome) {
                  ServerResponse r;
                  if (!outcome.error) outcome.error = non_finite_vector_error(outcome.output, model);
                  if (outcome.error) {
                    r = error_response(*outcome.error, ErrorShape::kOpenAi);
                  } else {
                    r.body = render_openai_embeddings(outcome.output, model, base64);
                    r.tokens = outcome.output.prompt_tokens;
                  }
                  r.inputs = n_inputs;
                  respond(std::move(r));
                });
}

void handle_tokenize(const EmbedService& service, const ServerRequest& req, Respond respond) {
  TokenizeParams params;
  if (auto e = parse_tokenize_request(req.body, service.config().max_inputs_per_request, params))
    return respond(error_response(*e, ErrorShape::kOpenAi));
  if (params.model && !service.resolve_model(params.model))
    return respond(error_response({404, "invalid_request_error", "model_not_found",
                                   "the model '" + *params.model + "' does not exist", "model", 0},
                                  ErrorShape::kOpenAi));
  std::vector<std::vector<int32_t>> ids(params.texts.size());
  size_t total = 0;
  // Each prompt is held to the context length, as an embedding input is: without a cap one 60 MB prompt cost
  // seconds of tokenising and a reply of 100+ MB. The tokenizer refuses past the cap without tokenising it all.
  const size_t cap = service.config().max_input_tokens;
  for (size_t i = 0; i < params.texts.size(); ++i) {
    auto encoded = service.encoder().encode(params.texts[i], params.add_special_tokens, {.refuse_above = cap});
    if (!encoded.ok() && encoded.status().code() == ErrorCode::kOutOfRange)
      return respond(error_response(
          bad_request("prompt[" + std::to_string(i) + "] has more than " + std::to_string(cap) +
                          " tokens, the server's context length (--context-length); split it", "prompt",
                      "context_length_exceeded"),
          ErrorShape::kOpenAi));
    if (!encoded.ok())
      return respond(error_response(bad_request("input[" + std::to_string(i) + "]: " + encoded.status().message(), "prompt"),
                                    ErrorShape::kOpenAi));
    ids[i] = std::move(encoded).value();
    total += ids[i].size();
  }
  ServerResponse r;
  JsonWriter w(r.body);
  // {"tokens": [...], "count": n, "max_model_len": m}; lists of each when the prompt was a list (SGLang/vLLM).
  w.begin_object();
  w.key("tokens");
  if (params.batched) w.begin_array();
  for (const auto& seq : ids) {
    w.begin_array();
    for (int32_t id : seq) w.integer(id);
    w.end_array();
  }
  if (params.batched) w.end_array();
  w.key("count");
  if (params.batched) w.begin_array();
  for (const auto& seq : ids) w.integer(static_cast<int64_t>(seq.size()));
  if (params.batched) w.end_array();
  w.key("max_model_len");
  w.integer(static_cast<int64_t>(service.config().max_input_tokens));
  w.end_object();
  r.inputs = ids.size();
  r.tokens = total;
  respond(std::move(r));
}

ServerResponse models_response(const ServerConfig& config) {
  ServerResponse r;
  JsonWriter w(r.body);
  w.begin_object();
  w.key("object");
  w.string("list");
  w.key("data");
  w.begin_array();
  for (const auto& name : config.served_names) {
    w.begin_object();
    w.key("id");
    w.string(name);
    w.key("object");
    w.string("model");
    w.key("created");
    w.integer(0);
    w.key("owned_by");
    w.string("embedserve");
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return r;
}

}  // namespace embedserve
