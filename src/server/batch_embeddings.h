// The batch API's endpoint for "/v1/embeddings": a chunk of request bodies parsed with the route's own schema,
// embedded through EmbedService as one bulk-lane job, each answered with the body the route would answer.
#pragma once

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "jobs/batch_endpoint.h"
#include "server/embed_service.h"

namespace embedserve {

class EmbeddingsBatchEndpoint : public jobs::BatchEndpoint {
 public:
  explicit EmbeddingsBatchEndpoint(const EmbedService& service) : service_(service) {}
  // A chunk the scheduler's queue cannot admit now (interactive load fills it) is retried after a pause
  // rather than failed: batch work waits, it is never refused for being behind.
  std::future<std::vector<jobs::EndpointResponse>> start(std::vector<std::string> bodies) override;

 private:
  const EmbedService& service_;
};

}  // namespace embedserve
