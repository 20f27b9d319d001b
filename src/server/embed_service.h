// EmbedService: the one embed path behind /v1/embeddings and /embed — prompts, tokenisation, validation
// against the model, submission to the scheduler, and Matryoshka/normalisation of the vectors.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "scheduler/scheduler.h"
#include "scheduler/worker_pool.h"
#include "server/errors.h"
#include "server/replica_report.h"
#include "server/request_parsing.h"
#include "text/prompt.h"
#include "text/text_encoder.h"
#include "text/text_pipeline.h"

namespace embedserve {

class Metrics;

struct EmbedServiceConfig {
  std::vector<std::string> served_names;  // model names clients may ask for; the first is reported
  bool strict_model_name = false;         // false: any other name means the one model served, as in SGLang
  size_t max_input_tokens = 0;            // the longest input accepted (--context-length), special tokens included
  size_t max_inputs_per_request = 2048;
  std::chrono::milliseconds request_timeout{0};  // 0: none
  PromptConfig prompts;                          // config_sentence_transformers.json's named prompts
  std::vector<ReplicaDevice> replica_devices;    // where each engine replica runs, in replica order
};

struct EmbedOutput {
  std::vector<float> vectors;  // f32 [n, dims]
  size_t n = 0;
  size_t dims = 0;
  size_t prompt_tokens = 0;
};

struct EmbedOutcome {
  std::optional<ApiError> error;
  EmbedOutput output;
};

class EmbedService {
 public:
  EmbedService(const TextEncoder& encoder, Scheduler& scheduler, WorkerPool& pool, const EngineInfo& info,
               EmbedServiceConfig config, Metrics* metrics);

  // Call on a worker thread. Validates `params` against the model, tokenises, and queues the work;
  // `done` is called exactly once, on a worker thread, with the vectors in input order or the error.
  void embed(EmbedParams params, CancelFlag cancel, std::function<void(EmbedOutcome)> done) const;

  // A batch job's chunk: several /v1/embeddings requests as one scheduler job in the bulk lane, so interactive
  // requests keep their priority; no --request-timeout (a batch has its own completion window). On OK, `done`
  // gets one outcome per request, in order, once (on a worker thread, or at once when no request is valid).
  // Errors (done not called): the scheduler's admission — resource_exhausted when its queue is full.
  Status embed_requests(std::vector<EmbedParams> requests, std::function<void(std::vector<EmbedOutcome>)> done) const;

  // Turns inputs into the token sequences that will be embedded, through the text pipeline `embedserve embed`
  // uses too (prompt prefixed, EOS appended, truncated or refused, ids checked against the embedding table).
  std::optional<ApiError> tokenize_inputs(const EmbedParams& params, std::vector<std::vector<int32_t>>& out) const;

  // The served name a request's `model` field refers to; nullopt when it names none and the check is strict.
  std::optional<std::string> resolve_model(const std::optional<std::string>& requested) const;

  SchedulerStats queue_stats() const { return scheduler_.stats(); }
  std::vector<ReplicaStatus> replicas() const { return scheduler_.replicas(); }
  // The scheduler's token budget per engine call (--max-num-batched-tokens), not the engine's workspace.
  size_t max_num_batched_tokens() const { return scheduler_.max_num_batched_tokens(); }
  const EngineInfo& info() const { return info_; }
  const EmbedServiceConfig& config() const { return config_; }
  const TextEncoder& encoder() const { return pipeline_.encoder(); }

 private:
  Scheduler& scheduler_;
  WorkerPool& pool_;
  const EngineInfo info_;
  const EmbedServiceConfig config_;
  const TextPipeline pipeline_;
  Metrics* metrics_;
};

}  // namespace embedserve
