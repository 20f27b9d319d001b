// A complete API stack for tests: FakeEngine → Scheduler → EmbedService → Router, with a byte-level
// encoder (tests/text/byte_encoder.h), so no model or vocabulary file is needed.
#pragma once

#include <future>
#include <memory>

#include "../scheduler/fake_engine.h"
#include "../text/byte_encoder.h"
#include "server/router.h"

namespace embedserve::testing {

struct TestApi {
  explicit TestApi(std::string api_key = "", size_t budget = 256, size_t max_input_tokens = 64, int hidden = 8,
                   bool strict_model_name = false)
      : engine(budget, hidden), pool(2, 64) {
    SchedulerOptions so;
    so.max_num_batched_tokens = budget;
    so.on_batch = [this](const BatchReport& b) { metrics.observe_batch(b); };
    scheduler = std::make_unique<Scheduler>(engine, so);
    EmbedServiceConfig cfg;
    cfg.served_names = {"qwen3-test", "alias"};
    cfg.strict_model_name = strict_model_name;
    cfg.max_input_tokens = max_input_tokens;
    cfg.max_inputs_per_request = 16;
    cfg.prompts.prompts = {{"query", "Q: "}, {"document", ""}};
    service = std::make_unique<EmbedService>(encoder, *scheduler, pool, engine.info(), cfg, &metrics);
    ServerConfig sc;
    sc.served_names = cfg.served_names;
    if (!api_key.empty()) sc.api_keys = {std::move(api_key)};
    sc.version = "test";
    router = std::make_unique<Router>(sc, metrics, pool);
  }
  ~TestApi() { scheduler->shutdown(); }

  ServerResponse call(std::string method, std::string path, std::string body = "", std::string auth = "",
                    CancelFlag cancel = nullptr) {
    auto promise = std::make_shared<std::promise<ServerResponse>>();
    auto future = promise->get_future();
    ServerRequest req;
    req.method = std::move(method);
    req.path = std::move(path);
    req.body = std::move(body);
    req.authorization = std::move(auth);
    router->handle(std::move(req), cancel ? cancel : std::make_shared<std::atomic<bool>>(false),
                   [promise](ServerResponse r) { promise->set_value(std::move(r)); });
    return future.get();
  }

  ByteEncoder encoder;
  FakeEngine engine;
  Metrics metrics;
  WorkerPool pool;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<EmbedService> service;
  std::unique_ptr<Router> router;
};

}  // namespace embedserve::testing
