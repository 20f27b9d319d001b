// A BatchEndpoint for tests: answers each body with {"echo": <body>} (or a 400 when the body holds "bad"),
// on another thread, so chunks really are in flight while the caller reads the next.
#pragma once

#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "jobs/batch_endpoint.h"

namespace embedserve::jobs::testing {

class FakeEndpoint : public BatchEndpoint {
 public:
  std::future<std::vector<EndpointResponse>> start(std::vector<std::string> bodies) override {
    started += 1;
    requests += bodies.size();
    return std::async(std::launch::async, [bodies = std::move(bodies)] {
      std::vector<EndpointResponse> out;
      for (const auto& b : bodies) {
        if (b.find("bad") != std::string::npos) out.push_back({400, R"({"error":{"message":"bad"}})"});
        else out.push_back({200, "{\"echo\":" + b + "}"});
      }
      return out;
    });
  }
  std::atomic<size_t> started{0};
  std::atomic<size_t> requests{0};
};

}  // namespace embedserve::jobs::testing
