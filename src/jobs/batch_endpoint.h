// BatchEndpoint: what a batch job's requests are run by. The server implements it over its embed path and
// scheduler (server/batch_embeddings.h), so the jobs library needs neither HTTP nor the model.
#pragma once

#include <future>
#include <string>
#include <vector>

namespace embedserve::jobs {

// What the endpoint answered one request: its HTTP status and body, exactly as the route would answer.
struct EndpointResponse {
  int status_code = 200;
  std::string body;  // JSON
};

class BatchEndpoint {
 public:
  virtual ~BatchEndpoint() = default;
  // Starts the requests of one chunk (request bodies, in order); the future yields one response per body in
  // the same order. Called from one thread; several chunks may be in flight at once. The future may be deferred
  // (std::launch::deferred): rendering the answers then runs on the thread that takes them, the runner's.
  virtual std::future<std::vector<EndpointResponse>> start(std::vector<std::string> bodies) = 0;
};

}  // namespace embedserve::jobs
