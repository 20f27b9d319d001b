// Scheduler: admission, the batcher thread, and completion of jobs (results back in input order).
#include "scheduler/scheduler.h"

#include <algorithm>
#include <string>
#include <unordered_set>

namespace embedserve {
namespace {

size_t interactive_threshold(const SchedulerOptions& o) {
  return o.interactive_max_tokens ? o.interactive_max_tokens : std::max<size_t>(1, o.max_num_batched_tokens / 8);
}

double seconds_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

void finish(QueuedJob& q, StatusOr<JobResult> result) {
  if (q.finished) return;
  q.finished = true;
  if (q.job.on_done) q.job.on_done(std::move(result));
}

}  // namespace

Scheduler::Scheduler(Engine& engine, SchedulerOptions options)
    : engine_(engine),
      options_(std::move(options)),
      queue_(interactive_threshold(options_), options_.interactive_weight, options_.queue, options_.bulk_yield) {
  if (options_.max_num_batched_tokens == 0) options_.max_num_batched_tokens = 1;
  batcher_ = std::thread([this] { batcher_loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

Status Scheduler::submit(Job job) {
  if (job.inputs.empty()) return invalid_argument("a request needs at least one input");
  auto q = std::make_shared<QueuedJob>();
  for (size_t i = 0; i < job.inputs.size(); ++i) {
    const size_t len = job.inputs[i].size();
    if (len == 0) return invalid_argument("input " + std::to_string(i) + " has no tokens");
    // The budget is a target, the engine's workspace the hard limit: a longer input goes alone in a batch.
    const size_t limit = std::max(options_.max_num_batched_tokens, engine_.info().workspace_tokens);
    if (engine_.info().workspace_tokens && len > limit)
      return out_of_range("input " + std::to_string(i) + " has " + std::to_string(len) +
                          " tokens, more than the engine accepts in one batch (" + std::to_string(limit) + ")");
    q->total_tokens += len;
  }
  q->job = std::move(job);
  q->submitted = SteadyClock::now();
  q->result.vectors.resize(q->job.inputs.size() * static_cast<size_t>(engine_.info().hidden_size));
  q->result.hidden = static_cast<size_t>(engine_.info().hidden_size);
  q->result.prompt_tokens = q->total_tokens;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return unavailable("the server is shutting down");
    if (!queue_.admit(std::move(q)))
      return resource_exhausted("the queue is full (" + std::to_string(queue_.queued_inputs()) +
                                " inputs waiting); retry shortly");
  }
  cv_.notify_one();
  return Status();
}

std::future<StatusOr<JobResult>> Scheduler::submit_future(Job job) {
  auto promise = std::make_shared<std::promise<StatusOr<JobResult>>>();
  std::future<StatusOr<JobResult>> result = promise->get_future();
  job.on_done = [promise](StatusOr<JobResult> r) { promise->set_value(std::move(r)); };
  if (Status st = submit(std::move(job)); !st.ok()) promise->set_value(std::move(st));
  return result;
}

void Scheduler::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !batcher_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (batcher_.joinable()) batcher_.join();
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {queue_.queued_jobs(), queue_.queued_inputs(), queue_.queued_tokens()};
}

void Scheduler::batcher_loop() {
  SequenceBatch batch;
  std::vector<BatchSlot> slots;
  for (;;) {
    std::vector<std::shared_ptr<QueuedJob>> abandoned;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything admitted has been answered
      const auto now = SteadyClock::now();
      abandoned = queue_.sweep(now);
      queue_.fill(options_.max_num_batched_tokens, batch, slots, now);
    }
    // Callbacks run outside the lock so a slow one cannot hold up submit().
    for (auto& q : abandoned) {
      const bool cancelled = q->job.cancelled && q->job.cancelled->load(std::memory_order_relaxed);
      finish(*q, cancelled ? Status(ErrorCode::kCancelled, "the client went away")
                           : Status(ErrorCode::kDeadlineExceeded, "the request timed out in the queue"));
    }
    if (batch.num_sequences() > 0) run_batch(batch, slots);
    slots.clear();  // drop the batch's references so finished jobs are freed now
  }
}

void Scheduler::run_batch(const SequenceBatch& batch, std::vector<BatchSlot>& slots) {
  const size_t hidden = static_cast<size_t>(engine_.info().hidden_size);
  std::vector<float> out(batch.num_sequences() * hidden);  // f32 [n_seqs, hidden]
  const auto start = SteadyClock::now();
  for (auto& s : slots) {
    if (s.job->queue_timed) continue;
    s.job->queue_timed = true;
    s.job->result.queue_seconds = seconds_between(s.job->submitted, start);
  }
  const Status st = engine_.embed(batch, out);
  const double compute = seconds_between(start, SteadyClock::now());
  if (options_.on_batch) options_.on_batch({batch.num_sequences(), batch.num_tokens(), compute, st.ok()});

  std::unordered_set<QueuedJob*> seen;  // a job's compute time counts each batch once
  for (size_t row = 0; row < slots.size(); ++row) {
    QueuedJob& q = *slots[row].job;
    if (q.finished) continue;
    if (!st.ok()) {
      // Only the jobs in this batch fail; their undispatched inputs are swept at the next fill.
      finish(q, st.with_context("embedding failed"));
      continue;
    }
    if (seen.insert(&q).second) q.result.compute_seconds += compute;
    std::copy_n(out.data() + row * hidden, hidden, q.result.vectors.data() + slots[row].input * hidden);
    if (++q.done_inputs == q.job.inputs.size()) finish(q, std::move(q.result));
  }
}

}  // namespace embedserve
