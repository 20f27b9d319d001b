// EmbeddingsBatchEndpoint: schema parsing per body, one bulk job per chunk, answers rendered as the route's.
#include "server/batch_embeddings.h"

#include <future>
#include <memory>
#include <thread>

#include "server/handlers.h"

namespace embedserve {
namespace {

jobs::EndpointResponse error_answer(const ApiError& e) {
  ServerResponse r = error_response(e, ErrorShape::kOpenAi);
  return {r.status, std::move(r.body)};
}

}  // namespace

std::future<std::vector<jobs::EndpointResponse>> EmbeddingsBatchEndpoint::start(std::vector<std::string> bodies) {
  auto responses = std::make_shared<std::vector<jobs::EndpointResponse>>(bodies.size());
  std::vector<EmbedParams> requests;
  auto placed = std::make_shared<std::vector<size_t>>();       // response index of each request sent
  auto models = std::make_shared<std::vector<std::string>>();  // the served name each request asked for
  auto base64 = std::make_shared<std::vector<bool>>();
  const auto& cfg = service_.config();
  for (size_t i = 0; i < bodies.size(); ++i) {
    EmbedParams params;
    if (auto e = parse_openai_embedding_request(bodies[i], cfg.max_inputs_per_request, service_.info().hidden_size,
                                                params)) {
      (*responses)[i] = error_answer(*e);
      continue;
    }
    auto model = service_.resolve_model(params.model);
    if (!model) {
      (*responses)[i] = error_answer({404, "invalid_request_error", "model_not_found",
                                      "the model '" + *params.model + "' is not served here", "model", 0});
      continue;
    }
    placed->push_back(i);
    models->push_back(*model);
    base64->push_back(params.base64);
    requests.push_back(std::move(params));
  }
  // The scheduler answers on the request pool, which also serves interactive requests; rendering a chunk's
  // vectors as JSON (hundreds of lines of 1,024+ floats: tens of ms) there made queries wait behind it (p99 2.9 →
  // 9.6 ms on the GPU machine). So `done` only hands the outcomes over, and the answers are rendered by whoever
  // takes the future: the batch runner's thread, a deferred call.
  auto delivered = std::make_shared<std::promise<std::vector<EmbedOutcome>>>();
  auto done = [delivered](std::vector<EmbedOutcome> outcomes) { delivered->set_value(std::move(outcomes)); };
  auto render = [outcomes_future = delivered->get_future(), responses, placed, models, base64]() mutable {
    std::vector<EmbedOutcome> outcomes = outcomes_future.get();
    for (size_t k = 0; k < outcomes.size(); ++k) {
      jobs::EndpointResponse& r = (*responses)[(*placed)[k]];
      const EmbedOutcome& o = outcomes[k];
      if (o.error) {
        r = error_answer(*o.error);
      } else if (auto bad = non_finite_vector_error(o.output, (*models)[k])) {
        r = error_answer(*bad);
      } else {
        r = {200, render_openai_embeddings(o.output, (*models)[k], (*base64)[k])};
      }
    }
    return std::move(*responses);
  };
  for (auto pause = std::chrono::milliseconds(10);; pause = std::min(pause * 2, std::chrono::milliseconds(1000))) {
    Status st = service_.embed_requests(requests, done);
    if (st.ok()) break;
    if (st.code() != ErrorCode::kResourceExhausted) {
      std::vector<EmbedOutcome> failed(requests.size());
      for (auto& f : failed) f.error = api_error_from_status(st);
      done(std::move(failed));
      break;
    }
    std::this_thread::sleep_for(pause);
  }
  return std::async(std::launch::deferred, std::move(render));
}

}  // namespace embedserve
