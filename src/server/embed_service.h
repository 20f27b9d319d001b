// EmbedService: the one embed path behind /v1/embeddings and /embed — prompts, tokenisation, validation
// against the model, submission to the scheduler, and Matryoshka/normalisation of the vectors.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "scheduler/scheduler.h"
#include "scheduler/worker_pool.h"
#include "server/errors.h"
#include "server/request_parsing.h"
#include "server/text_encoder.h"

namespace embedserve {

class Metrics;

struct EmbedServiceConfig {
  std::vector<std::string> served_names;  // model names clients may ask for; the first is reported
  bool strict_model_name = false;         // false: any other name means the one model served, as in SGLang
  size_t max_input_tokens = 0;            // the longest input accepted (--context-length), special tokens included
  size_t max_inputs_per_request = 2048;
  std::chrono::milliseconds request_timeout{0};  // 0: none
  std::map<std::string, std::string> prompts;    // config_sentence_transformers.json "prompts"
  std::optional<std::string> default_prompt_name;
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

  // Turns inputs into the token sequences that will be embedded (prompt prefixed, truncated or refused).
  std::optional<ApiError> tokenize_inputs(const EmbedParams& params, std::vector<std::vector<int32_t>>& out) const;

  // The served name a request's `model` field refers to; nullopt when it names none and the check is strict.
  std::optional<std::string> resolve_model(const std::optional<std::string>& requested) const;

  SchedulerStats queue_stats() const { return scheduler_.stats(); }
  size_t batch_token_budget() const { return scheduler_.max_batch_tokens(); }
  const EngineInfo& info() const { return info_; }
  const EmbedServiceConfig& config() const { return config_; }
  const TextEncoder& encoder() const { return encoder_; }

 private:
  std::optional<ApiError> encode_text(const std::string& text, const EmbedParams& params, size_t index,
                                      std::vector<int32_t>& ids) const;

  const TextEncoder& encoder_;
  Scheduler& scheduler_;
  WorkerPool& pool_;
  const EngineInfo info_;
  const EmbedServiceConfig config_;
  Metrics* metrics_;
};

}  // namespace embedserve
