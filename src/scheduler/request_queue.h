// RequestQueue: the scheduler's two-lane queue and the policy that packs one engine call from it.
// Not thread-safe on its own: the Scheduler holds its mutex around every call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "engine/batch.h"
#include "scheduler/job.h"

namespace embedserve {

struct QueuedJob;
// Admitted jobs with a deadline, by deadline: the scheduler's deadline thread answers them when it passes.
using DeadlineIndex = std::multimap<SteadyClock::time_point, std::weak_ptr<QueuedJob>>;

// A job plus the batcher's bookkeeping. Shared between the queue and the batch currently running.
struct QueuedJob {
  Job job;
  size_t total_tokens = 0;
  size_t next_input = 0;     // inputs [0, next_input) have gone into a batch
  size_t chunk_start = 0;    // tokens of inputs[next_input] already sent in chunks (chunked prefill)
  uint64_t sequence = 0;     // the engine's name for inputs[next_input] while it goes in chunks
  // The replica whose engine holds inputs[next_input]'s keys and values while it goes in chunks: its later
  // chunks run there only (set at its first chunk, while chunk_start > 0).
  size_t replica = 0;
  size_t done_inputs = 0;    // inputs whose vectors are back
  // on_done has been called (success, error, cancel or timeout): set by whichever thread calls it first.
  std::atomic<bool> finished{false};
  DeadlineIndex::iterator deadline_entry;  // valid while in_deadlines (both guarded by the scheduler's mutex)
  bool in_deadlines = false;
  bool queue_timed = false;  // result.queue_seconds has been recorded (at its first engine call)
  bool interactive = false;
  SteadyClock::time_point submitted;
  JobResult result;
};

// One input of one job placed in a batch: row `row` of the engine output belongs to job->inputs[input].
struct BatchSlot {
  std::shared_ptr<QueuedJob> job;
  size_t input = 0;
};

// An input dropped part-way through its chunks: what the engine of `replica` holds for it must be freed.
struct InterruptedInput {
  uint64_t sequence = 0;
  size_t replica = 0;
};

struct QueueLimits {
  size_t max_inputs = 0;  // undispatched inputs across all jobs; 0: unlimited
  size_t max_tokens = 0;  // undispatched tokens across all jobs; 0: unlimited
};

// How bulk work makes room for queries. An engine call cannot be interrupted, so a query arriving while a
// full-budget bulk call runs waits for all of it; while interactive jobs have been arriving (within `recent`),
// bulk inputs fill at most `tokens` of each call, so that wait stays one short call. Without queries bulk work
// gets the whole budget again. tokens == 0: bulk work always fills the budget.
struct BulkYield {
  size_t tokens = 0;
  SteadyClock::duration recent = std::chrono::seconds(1);
};

// Two lanes, so a short interactive query does not wait behind a 2,048-input bulk job:
//   - a job whose total tokens are at most `interactive_max_tokens` is interactive, else bulk;
//   - between lanes, weighted fair queuing by tokens: each lane has a virtual clock that advances by
//     tokens_served / weight. The lane with the earlier clock packs first (ties go to interactive); the
//     other lane fills the space left. A lane that was empty has its clock moved up to the other's, so
//     idling earns no burst of credit. Interactive traffic gets `interactive_weight` times bulk's share
//     under contention, and an interactive job arriving behind bulk work usually rides the very next batch.
//   - neither lane starves: a lane with the earlier clock always gets at least one input (an empty batch
//     takes any input, even one longer than the budget), which advances its clock past the other's.
// Within a lane jobs are served first come first served, and a job's inputs in order; a lane stops at its
// first input that does not fit, so a long input is never overtaken forever by short ones behind it.
// With several engine replicas (--dp), an input part-way through its chunks continues on the replica that holds
// its keys and values: the others pass over its job (its later inputs wait behind it) and serve the jobs behind.
class RequestQueue {
 public:
  // Inputs longer than chunk_above go in chunks of chunk_tokens; chunk_tokens 0: every input goes whole (the
  // engine takes no chunks).
  RequestQueue(size_t interactive_max_tokens, double interactive_weight, QueueLimits limits, size_t chunk_tokens,
               size_t chunk_above, BulkYield yield = {});

  // Admits the job unless the limits would be exceeded; an empty queue admits any job, so no request
  // is refused forever for being large.
  bool admit(std::shared_ptr<QueuedJob> job);

  // Removes jobs that are finished, cancelled or past their deadline. Returns the cancelled and expired
  // ones (not yet finished) so the caller can complete them outside the lock; appends to `interrupted` the
  // engine names of removed inputs that had sent some chunks but not their last (their keys and values to free).
  std::vector<std::shared_ptr<QueuedJob>> sweep(SteadyClock::time_point now,
                                                std::vector<InterruptedInput>& interrupted);

  // Removes every job (shutdown); returns those not finished, and like sweep the inputs interrupted mid-chunks.
  std::vector<std::shared_ptr<QueuedJob>> clear(std::vector<InterruptedInput>& interrupted);

  // Removes the jobs whose input in progress has its keys and values on `replica` (its engine failed): those
  // inputs cannot continue anywhere else. Returns the ones not yet finished.
  std::vector<std::shared_ptr<QueuedJob>> remove_pinned_to(size_t replica);

  // Packs up to `budget` tokens of inputs into `batch` (cleared first) for the engine of `replica`, recording who
  // owns each row; bulk inputs to at most BulkYield::tokens when an interactive job was admitted within
  // BulkYield::recent of `now`.
  void fill(size_t budget, SequenceBatch& batch, std::vector<BatchSlot>& slots,
            SteadyClock::time_point now = SteadyClock::now(), size_t replica = 0);

  bool empty() const { return lanes_[0].empty() && lanes_[1].empty(); }
  size_t queued_jobs() const { return lanes_[0].size() + lanes_[1].size(); }
  size_t queued_inputs() const { return queued_inputs_; }
  size_t queued_tokens() const { return queued_tokens_; }

 private:
  enum Lane { kInteractive = 0, kBulk = 1 };
  // Takes inputs from `lane` while they fit, or the next chunk of a long input into an empty batch; returns the
  // tokens taken.
  size_t take(Lane lane, size_t budget, SequenceBatch& batch, std::vector<BatchSlot>& slots, size_t replica);
  void forget(const QueuedJob& job);  // drops the job's undispatched inputs from the counters

  size_t interactive_max_tokens_;
  double weights_[2];
  double clock_[2] = {0.0, 0.0};
  QueueLimits limits_;
  size_t chunk_tokens_;
  size_t chunk_above_;
  uint64_t next_sequence_ = 1;
  BulkYield yield_;
  // Admission time of the latest interactive job; none before the first. (A default time point is the steady
  // clock's epoch, the machine's boot: within `recent` of boot every bulk call would yield with no query seen.)
  std::optional<SteadyClock::time_point> last_interactive_;
  std::deque<std::shared_ptr<QueuedJob>> lanes_[2];
  size_t queued_inputs_ = 0;
  size_t queued_tokens_ = 0;
};

}  // namespace embedserve
