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

// The batcher and the deadline thread may both try: the first wins, the other does nothing.
void finish(QueuedJob& q, StatusOr<JobResult> result) {
  if (q.finished.exchange(true)) return;
  if (q.job.on_done) q.job.on_done(std::move(result));
}

size_t chunk_size(const SchedulerOptions& o, const Engine& engine) {
  if (!o.chunked_prefill || !engine.info().chunked_prefill) return 0;
  size_t chunk = o.chunk_tokens ? o.chunk_tokens : o.max_num_batched_tokens;
  // A chunk rides alone, so the engine's workspace bounds it too.
  if (engine.info().workspace_tokens) chunk = std::min(chunk, engine.info().workspace_tokens);
  return std::max<size_t>(chunk, 1);
}

// Inputs longer than this go in chunks (never fewer than one chunk's tokens).
size_t chunk_threshold(const SchedulerOptions& o, size_t chunk) { return std::max(chunk, o.chunk_above); }

}  // namespace

Scheduler::Scheduler(Engine& engine, SchedulerOptions options)
    : engine_(engine),
      options_(std::move(options)),
      queue_(interactive_threshold(options_), options_.interactive_weight, options_.queue,
             chunk_size(options_, engine), chunk_threshold(options_, chunk_size(options_, engine)),
             options_.bulk_yield) {
  if (options_.max_num_batched_tokens == 0) options_.max_num_batched_tokens = 1;
  batcher_ = std::thread([this] { batcher_loop(); });
  deadline_thread_ = std::thread([this] { deadline_loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

Status Scheduler::submit(Job job) {
  if (job.inputs.empty()) return invalid_argument("a request needs at least one input");
  auto q = std::make_shared<QueuedJob>();
  for (size_t i = 0; i < job.inputs.size(); ++i) {
    const size_t len = job.inputs[i].size();
    if (len == 0) return invalid_argument("input " + std::to_string(i) + " has no tokens");
    if (options_.chunked_prefill && engine_.info().chunked_prefill) {
      // Any input within the model's positions goes, in chunks when it is long.
      const auto positions = static_cast<size_t>(engine_.info().max_position_embeddings);
      if (positions && len > positions)
        return out_of_range("input " + std::to_string(i) + " has " + std::to_string(len) +
                            " tokens, more than the model's maximum of " + std::to_string(positions));
    } else {
      // The budget is a target, the engine's workspace the hard limit: a longer input goes alone in a batch.
      const size_t limit = std::max(options_.max_num_batched_tokens, engine_.info().workspace_tokens);
      if (engine_.info().workspace_tokens && len > limit)
        return out_of_range("input " + std::to_string(i) + " has " + std::to_string(len) +
                            " tokens, more than the engine accepts in one batch (" + std::to_string(limit) + ")");
    }
    q->total_tokens += len;
  }
  q->job = std::move(job);
  q->submitted = SteadyClock::now();
  q->result.vectors.resize(q->job.inputs.size() * static_cast<size_t>(engine_.info().hidden_size));
  q->result.hidden = static_cast<size_t>(engine_.info().hidden_size);
  q->result.prompt_tokens = q->total_tokens;
  const SteadyClock::time_point deadline = q->job.deadline;
  bool earliest = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return unavailable("the server is shutting down");
    if (!queue_.admit(q))
      return resource_exhausted("the queue is full (" + std::to_string(queue_.queued_inputs()) +
                                " inputs waiting); retry shortly");
    if (deadline != SteadyClock::time_point::max()) {
      earliest = deadlines_.empty() || deadline < deadlines_.begin()->first;
      q->deadline_entry = deadlines_.emplace(deadline, q);
      q->in_deadlines = true;
    }
  }
  cv_.notify_one();
  if (earliest) deadline_cv_.notify_one();
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
    if (stopping_ && !batcher_.joinable() && !deadline_thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (batcher_.joinable()) batcher_.join();
  deadline_cv_.notify_all();
  if (deadline_thread_.joinable()) deadline_thread_.join();
}

bool Scheduler::abandon(std::chrono::milliseconds wait) {
  std::vector<std::shared_ptr<QueuedJob>> unfinished;
  std::vector<uint64_t> interrupted;
  bool left_engine = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    abandoning_ = true;
    unfinished = queue_.clear(abandoned_sequences_);
    cv_.notify_all();
    left_engine = batcher_done_cv_.wait_for(lock, wait, [this] { return batcher_done_; });
    if (left_engine) interrupted.swap(abandoned_sequences_);
  }
  for (auto& q : unfinished) finish(*q, unavailable("the server shut down before this request's vectors were ready"));
  if (!left_engine) return false;
  // The batcher has left: the engine is free to drop what the interrupted inputs hold.
  end_sequences(interrupted);
  shutdown();
  return true;
}

void Scheduler::deadline_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_ && (batcher_done_ || deadlines_.empty())) return;
    if (deadlines_.empty()) {
      deadline_cv_.wait(lock);
      continue;
    }
    const SteadyClock::time_point next = deadlines_.begin()->first;
    if (SteadyClock::now() < next) {
      deadline_cv_.wait_until(lock, next);
      continue;
    }
    std::vector<std::shared_ptr<QueuedJob>> expired;
    while (!deadlines_.empty() && deadlines_.begin()->first <= SteadyClock::now()) {
      if (auto q = deadlines_.begin()->second.lock()) {
        q->in_deadlines = false;
        if (!q->finished.load()) expired.push_back(std::move(q));
      }
      deadlines_.erase(deadlines_.begin());
    }
    lock.unlock();
    // Answered now, whatever the engine is doing; the batcher drops their queued inputs at its next sweep, and
    // their inputs in flight go no further than the chunk running.
    for (auto& q : expired)
      finish(*q, Status(ErrorCode::kDeadlineExceeded, "the request timed out before its vectors were ready"));
    expired.clear();
    lock.lock();
  }
}

void Scheduler::forget_deadlines(const std::vector<QueuedJob*>& jobs) {
  std::lock_guard<std::mutex> lock(mu_);
  for (QueuedJob* q : jobs) {
    if (!q->in_deadlines) continue;
    deadlines_.erase(q->deadline_entry);
    q->in_deadlines = false;
  }
}

void Scheduler::end_sequences(const std::vector<uint64_t>& sequences) {
  for (uint64_t sequence : sequences) {
    engine_.end_sequence(sequence);
    auto it = chunk_progress_.find(sequence);
    if (it == chunk_progress_.end()) continue;
    if (options_.on_chunks_abandoned) options_.on_chunks_abandoned(it->second.first, it->second.second);
    chunk_progress_.erase(it);
  }
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {queue_.queued_jobs(), queue_.queued_inputs(), queue_.queued_tokens()};
}

void Scheduler::batcher_loop() {
  SequenceBatch batch;
  std::vector<BatchSlot> slots;
  const auto leave = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    batcher_done_ = true;
    batcher_done_cv_.notify_all();
    deadline_cv_.notify_all();
  };
  for (;;) {
    std::vector<std::shared_ptr<QueuedJob>> abandoned;
    std::vector<uint64_t> interrupted;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Stopping, and everything admitted has been answered; or abandon(), which answers the rest itself.
      if (queue_.empty() || abandoning_) break;
      const auto now = SteadyClock::now();
      abandoned = queue_.sweep(now, interrupted);
      queue_.fill(options_.max_num_batched_tokens, batch, slots, now);
    }
    // Inputs dropped part-way through their chunks stop here: their keys and values are freed before the next call.
    end_sequences(interrupted);
    // Callbacks run outside the lock so a slow one cannot hold up submit().
    std::vector<QueuedJob*> done;
    for (auto& q : abandoned) {
      const bool cancelled = q->job.cancelled && q->job.cancelled->load(std::memory_order_relaxed);
      finish(*q, cancelled ? Status(ErrorCode::kCancelled, "the client went away")
                           : Status(ErrorCode::kDeadlineExceeded, "the request timed out in the queue"));
      done.push_back(q.get());
    }
    if (batch.num_sequences() > 0) run_batch(batch, slots);
    for (const BatchSlot& slot : slots)
      if (slot.job->finished.load()) done.push_back(slot.job.get());
    if (!done.empty()) forget_deadlines(done);
    slots.clear();  // drop the batch's references so finished jobs are freed now
  }
  leave();
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
  if (options_.on_batch)
    options_.on_batch({batch.num_sequences(), batch.num_tokens(), compute, st.ok(), batch.chunk.has_value(),
                       !batch.ends_sequences()});
  // A chunk before its input's last returns no vector: its job only gains compute time (or fails).
  const bool vectors = batch.ends_sequences();
  if (batch.chunk) {
    if (vectors || !st.ok()) chunk_progress_.erase(batch.chunk->sequence);
    else chunk_progress_[batch.chunk->sequence] = {batch.chunk->start + batch.num_tokens(), batch.chunk->total};
  }

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
    if (!vectors) continue;
    std::copy_n(out.data() + row * hidden, hidden, q.result.vectors.data() + slots[row].input * hidden);
    if (++q.done_inputs == q.job.inputs.size()) finish(q, std::move(q.result));
  }
}

}  // namespace embedserve
