// EmbeddingsBatchEndpoint: schema parsing per body, one bulk job per chunk, answers rendered as the route's.
#include "server/batch_embeddings.h"

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
  auto promise = std::make_shared<std::promise<std::vector<jobs::EndpointResponse>>>();
  auto future = promise->get_future();
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
  auto done = [promise, responses, placed, models, base64](std::vector<EmbedOutcome> outcomes) {
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
    promise->set_value(std::move(*responses));
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
  return future;
}

}  // namespace embedserve
