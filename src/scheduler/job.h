// Job: one request's token sequences on their way through the scheduler, and what comes back.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/status.h"

namespace embedserve {

using SteadyClock = std::chrono::steady_clock;

struct JobResult {
  std::vector<float> vectors;  // f32 [n_inputs, hidden], row i is input i's pooled vector, as the engine gave it
  size_t hidden = 0;
  size_t prompt_tokens = 0;    // sum of the inputs' lengths
  double queue_seconds = 0;    // from submit() until the job's first input went into an engine call
  double compute_seconds = 0;  // engine time of the batches that carried its inputs
};

// Called exactly once, on the batcher thread or, for a request whose deadline passed while its inputs were in the
// engine, on the scheduler's deadline thread: keep it short (hand the result to another thread).
using JobCallback = std::function<void(StatusOr<JobResult>)>;

// Set by the network layer when the client disconnects; the batcher then skips the job's remaining inputs and
// chunks.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;

struct Job {
  std::vector<std::vector<int32_t>> inputs;  // int32 [n_inputs][len_i], already validated by the caller
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  CancelFlag cancelled;                       // may be null: never cancelled
  bool raw_vectors = false;                   // pooled vectors without the model's L2 normalisation (TEI normalize: false)
  // Always the bulk lane, however small: a batch job's last chunk must not take interactive priority.
  bool bulk = false;
  JobCallback on_done;
};

}  // namespace embedserve
