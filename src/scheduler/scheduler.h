// Scheduler: admits jobs into a bounded queue and runs them through one or more engine replicas (--dp), one
// batcher thread each.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <future>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "scheduler/busy_poll.h"
#include "scheduler/job.h"
#include "scheduler/request_queue.h"

namespace embedserve {

// One engine call, reported to the metrics layer (called on the batcher thread of the replica that ran it).
struct BatchReport {
  size_t sequences = 0;
  size_t tokens = 0;
  double compute_seconds = 0;
  bool ok = true;
  bool chunk = false;          // one chunk of a longer input (chunked prefill)
  bool partial_chunk = false;  // a chunk before its input's last: no vector came out
  size_t replica = 0;          // which engine replica ran it
};

// The chunk size of inputs that do not fit one batch, unless --chunked-prefill-size says otherwise: a query waits
// for one chunk at most (on the 4B at the end of a 32k input ~0.1 s: a chunk's attention grows with the keys
// before it, and 2,048-token chunks kept queries beside one at p99 194 ms).
constexpr size_t kDefaultChunkTokens = 1024;
// Which inputs go in chunks unless --chunked-prefill-size says otherwise: those longer than half the batch budget.
// A chunk rides alone, so inputs that share batches well stay whole; a long input's attention grows with its
// length squared (16k tokens on the 4B: ~0.3 s of attention beside 0.17 s of GEMMs), so it would hold the engine
// well past a full batch of short ones.
inline size_t default_chunk_above(size_t max_num_batched_tokens) {
  return std::max(kDefaultChunkTokens, max_num_batched_tokens / 2);
}

// --max-num-batched-tokens when none is given. A GPU's throughput grows with the batch up to ~16k tokens. A CPU's
// GEMMs are saturated at a few hundred rows (docs/PERFORMANCE.md, issue 15: 32- and 512-token inputs run as fast
// in 2,048-token batches as in 16,384-token ones), while the workspace a batch needs is resident memory (~200 KB
// per token on the 4B, 255 KB on the 8B): 2,048 keeps the 4B's weights and workspace within 9 GB and the 8B's
// within 17 GB.
constexpr size_t kDefaultGpuBatchTokens = 16384;
constexpr size_t kDefaultCpuBatchTokens = 2048;
inline size_t default_max_num_batched_tokens(Device device) {
  return device == Device::kCpu ? kDefaultCpuBatchTokens : kDefaultGpuBatchTokens;
}

struct SchedulerOptions {
  size_t max_num_batched_tokens = 16384;  // tokens per Engine::embed call (no padding: the sum of lengths)
  // Chunked prefill (--chunked-prefill-size): an input longer than chunk_above goes to the engine in chunks of
  // chunk_tokens tokens, other batches running between them, when the engine takes chunks. A chunk rides alone, so
  // shorter inputs keep going whole in shared batches. chunk_tokens 0: max_num_batched_tokens; chunk_above 0:
  // chunk_tokens.
  size_t chunk_tokens = 0;
  size_t chunk_above = 0;
  bool chunked_prefill = true;  // false: every input goes whole (SGLang's --chunked-prefill-size -1)
  QueueLimits queue;                      // undispatched inputs/tokens admitted at once
  size_t interactive_max_tokens = 0;      // jobs this small go to the interactive lane; 0: max_num_batched_tokens / 8
  double interactive_weight = 4.0;        // interactive lane's share of tokens under contention, relative to bulk
  BulkYield bulk_yield;                   // bulk tokens per engine call while queries arrive (0: no cap)
  std::function<void(const BatchReport&)> on_batch;  // optional
  // Called on the batcher thread for each input dropped part-way through its chunks (client gone, deadline
  // passed, shutdown), with the tokens it had sent and its length: the work it no longer costs. Optional.
  std::function<void(size_t sent_tokens, size_t total_tokens)> on_chunks_abandoned;
  // Called on a replica's batcher thread when its engine failed (a device fault, not a bad input) and the replica
  // left the rotation, with how many replicas still serve. Optional.
  std::function<void(size_t replica, const Status& fault, size_t replicas_left)> on_replica_failed;
  // Called once, on the last failing replica's thread, when no replica is left: the scheduler then refuses new jobs
  // and has answered every admitted one with `unavailable`. Optional (serve stops the process with it).
  std::function<void(const Status& last_fault)> on_all_replicas_failed;
};

// One engine replica as /health and /metrics report it.
struct ReplicaStatus {
  size_t index = 0;
  bool up = true;          // in rotation; false once its engine failed
  uint64_t batches = 0;    // engine calls it ran, failed ones included
  uint64_t tokens = 0;     // tokens of its successful calls
  std::string fault;       // why it left the rotation (empty while up)
};

// The rows of the largest call a scheduler with these options makes to the engine, which its workspace must hold
// (EngineOptions::workspace_tokens): a full batch, a chunk, or an input just short of the chunking threshold,
// which goes whole. Longer inputs go in chunks; without chunked prefill, the longest input (`longest_input`,
// the context length) goes whole.
inline size_t workspace_tokens_for(const SchedulerOptions& o, size_t longest_input) {
  const size_t budget = std::max<size_t>(o.max_num_batched_tokens, 1);
  if (!o.chunked_prefill) return std::max(budget, longest_input);
  const size_t chunk = o.chunk_tokens ? o.chunk_tokens : budget;
  return std::max({budget, chunk, o.chunk_above});
}

// A scheduler that takes inputs longer than half of `max_num_batched_tokens` in chunks of kDefaultChunkTokens, as
// serve does without --chunked-prefill-size (a budget of one token still takes inputs up to a chunk whole): what
// `embed` and the Python Engine run.
inline SchedulerOptions default_scheduler_options(size_t max_num_batched_tokens) {
  SchedulerOptions options;
  options.max_num_batched_tokens = max_num_batched_tokens;
  options.chunk_tokens = kDefaultChunkTokens;
  options.chunk_above = default_chunk_above(max_num_batched_tokens);
  return options;
}

struct SchedulerStats {
  size_t queued_jobs = 0;
  size_t queued_inputs = 0;
  size_t queued_tokens = 0;
};

// Several replicas (data parallelism): each has its own batcher thread, which fills the next batch from the one
// queue when its engine is free, so no batch waits for a busy replica while another idles. Batch formation does
// not depend on the number of replicas, and a sequence's vector depends on that sequence alone, so a vector is the
// same whichever replica computes it (the replicas are copies of one model with one set of options).
// Faults: an engine call that fails for its engine's sake (Engine::validate passed, the backend failed: a CUDA
// error, a lost device; not resource_exhausted, which fails only that batch) takes that replica out of rotation for good; its batch is retried once on another
// replica. An input part-way through its chunks on the failed replica cannot move (its keys and values were
// there): its request fails with `unavailable`. With no replica left every request fails with `unavailable`.
class Scheduler {
 public:
  // `engine` must outlive the scheduler; only the batcher thread calls it.
  Scheduler(Engine& engine, SchedulerOptions options);
  // One batcher thread per replica; every engine must outlive the scheduler and is called by its own thread only.
  Scheduler(std::vector<Engine*> replicas, SchedulerOptions options);
  ~Scheduler();  // shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues the job. On OK, job.on_done will be called exactly once. Errors (on_done not called):
  //   invalid_argument / out_of_range: no inputs, an empty input, or an input longer than the engine takes
  //   (in chunks: its positions; else in one batch: inputs longer than max_num_batched_tokens but within the
  //   engine's workspace go alone);
  //   resource_exhausted: the queue is full (retry later);  unavailable: shutting down.
  Status submit(Job job);

  // submit() for a caller without an event loop (`embedserve embed`): the future holds submit()'s error at
  // once, or the job's result when its last input is back. `job.on_done` must be empty: the future replaces it.
  std::future<StatusOr<JobResult>> submit_future(Job job);

  // Stops admitting, finishes every admitted job, joins the batcher. Idempotent.
  void shutdown();

  // Shutdown past the grace period: stops admitting, answers every job not yet done with `unavailable`, drops
  // inputs part-way through their chunks, and waits up to `wait` for the batcher to leave the engine call it may
  // be in. True when it has (then joined); false when the engine call is still running: the caller must end the
  // process without destroying the scheduler or the engine (an engine call cannot be interrupted).
  bool abandon(std::chrono::milliseconds wait);

  SchedulerStats stats() const;
  size_t max_num_batched_tokens() const { return options_.max_num_batched_tokens; }
  std::vector<ReplicaStatus> replicas() const;
  size_t replicas_up() const;

 private:
  // A replica's engine, its counters, and what its batcher thread alone touches.
  struct Replica {
    Engine* engine = nullptr;
    bool up = true;                            // guarded by mu_
    std::string fault;                         // guarded by mu_
    std::vector<uint64_t> to_end;              // inputs dropped mid-chunks whose keys and values it holds (mu_)
    std::atomic<uint64_t> batches{0};
    std::atomic<uint64_t> tokens{0};
    // In-progress chunked inputs on this engine, by name: tokens sent and length (its batcher thread only).
    std::map<uint64_t, std::pair<size_t, size_t>> chunk_progress;
    std::thread thread;
  };
  // A batch whose replica failed, waiting to run once more on another.
  struct RetryBatch {
    SequenceBatch batch;
    std::vector<BatchSlot> slots;
    size_t failed_replica = 0;
  };
  // What run_batch leaves for the loop: whether the replica must leave the rotation.
  enum class BatchOutcome { kDone, kReplicaFailed };

  const EngineInfo& info() const { return replicas_.front()->engine->info(); }
  // Wakes the batchers waiting for work: asleep on cv_ (one or all), or polling doorbell_ before they sleep.
  void wake_batchers(bool all);
  void batcher_loop(size_t r);
  // Answers jobs whose deadline passed with 504 at the deadline, even while their inputs are in the engine.
  void deadline_loop();
  BatchOutcome run_batch(size_t r, const SequenceBatch& batch, std::vector<BatchSlot>& slots, bool retried);
  // Takes replica r out of rotation after `fault` (under no lock); the failed batch is retried on another replica
  // unless `retried` already, else failed. Answers what cannot go on (inputs whose chunks were there, and
  // everything when no replica is left).
  void fail_replica(size_t r, const Status& fault, const SequenceBatch& batch, std::vector<BatchSlot>& slots,
                    bool retried);
  void end_sequences(size_t r, const std::vector<uint64_t>& sequences);
  // Routes inputs dropped mid-chunks to the replicas holding them (mu_ held); each frees its own between calls.
  void route_interrupted(const std::vector<InterruptedInput>& interrupted);
  // Drops finished jobs from deadlines_ (takes the lock).
  void forget_deadlines(const std::vector<QueuedJob*>& jobs);

  SchedulerOptions options_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  mutable std::mutex mu_;
  // Guards the results of jobs whose inputs run on several replicas at once (never held with mu_).
  std::mutex results_mu_;
  std::condition_variable cv_;
  RequestQueue queue_;
  // Every admitted job with a deadline, by deadline, until it finishes (read by the deadline thread).
  DeadlineIndex deadlines_;
  std::condition_variable deadline_cv_;
  bool stopping_ = false;
  bool abandoning_ = false;      // abandon(): the batchers leave after their current engine calls
  size_t batchers_running_ = 0;  // batcher threads still in their loop
  size_t replicas_up_ = 0;       // replicas in rotation
  Status all_failed_;            // set once no replica is left: why, for submit()'s refusal
  // Bumped whenever what a replica could take changes (admission, a batch taken, a replica failed): a replica that
  // found nothing it may take (only inputs pinned to other replicas) sleeps until it moves.
  uint64_t queue_version_ = 0;
  busy_poll::Doorbell doorbell_;  // rung with every notification of cv_ (wake_batchers)
  std::deque<RetryBatch> retries_;
  std::condition_variable batchers_done_cv_;
  std::thread deadline_thread_;
};

}  // namespace embedserve
