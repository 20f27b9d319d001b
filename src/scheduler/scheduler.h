// Scheduler: admits jobs into a bounded queue and runs them through the engine on one batcher thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "core/status.h"
#include "engine/engine.h"
#include "scheduler/job.h"
#include "scheduler/request_queue.h"

namespace embedserve {

// One engine call, reported to the metrics layer (called on the batcher thread).
struct BatchReport {
  size_t sequences = 0;
  size_t tokens = 0;
  double compute_seconds = 0;
  bool ok = true;
};

struct SchedulerOptions {
  size_t max_num_batched_tokens = 16384;  // tokens per Engine::embed call (no padding: the sum of lengths)
  QueueLimits queue;                      // undispatched inputs/tokens admitted at once
  size_t interactive_max_tokens = 0;      // jobs this small go to the interactive lane; 0: max_num_batched_tokens / 8
  double interactive_weight = 4.0;        // interactive lane's share of tokens under contention, relative to bulk
  BulkYield bulk_yield;                   // bulk tokens per engine call while queries arrive (0: no cap)
  std::function<void(const BatchReport&)> on_batch;  // optional
};

struct SchedulerStats {
  size_t queued_jobs = 0;
  size_t queued_inputs = 0;
  size_t queued_tokens = 0;
};

class Scheduler {
 public:
  // `engine` must outlive the scheduler; only the batcher thread calls it.
  Scheduler(Engine& engine, SchedulerOptions options);
  ~Scheduler();  // shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the job. On OK, job.on_done will be called exactly once. Errors (on_done not called):
  //   invalid_argument / out_of_range: no inputs, an empty input, or an input longer than the engine takes
  //   in one batch (inputs longer than max_num_batched_tokens but within the engine's workspace go alone);
  //   resource_exhausted: the queue is full (retry later);  unavailable: shutting down.
  Status submit(Job job);

  // submit() for a caller without an event loop (`embedserve embed`): the future holds submit()'s error at
  // once, or the job's result when its last input is back. `job.on_done` must be empty: the future replaces it.
  std::future<StatusOr<JobResult>> submit_future(Job job);

  // Stops admitting, finishes every admitted job, joins the batcher. Idempotent.
  void shutdown();

  SchedulerStats stats() const;
  size_t max_num_batched_tokens() const { return options_.max_num_batched_tokens; }

 private:
  void batcher_loop();
  void run_batch(const SequenceBatch& batch, std::vector<BatchSlot>& slots);

  Engine& engine_;
  SchedulerOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  RequestQueue queue_;
  bool stopping_ = false;
  std::thread batcher_;
};

}  // namespace embedserve
