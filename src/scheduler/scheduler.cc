// Scheduler: admission, the replicas' batcher threads, faults, and completion of jobs (results back in input order).
#include "scheduler/scheduler.h"

#include <algorithm>
#include <optional>
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

Scheduler::Scheduler(Engine& engine, SchedulerOptions options) : Scheduler(std::vector<Engine*>{&engine}, std::move(options)) {}

Scheduler::Scheduler(std::vector<Engine*> replicas, SchedulerOptions options)
    : options_(std::move(options)),
      queue_(interactive_threshold(options_), options_.interactive_weight, options_.queue,
             chunk_size(options_, *replicas.at(0)), chunk_threshold(options_, chunk_size(options_, *replicas.at(0))),
             options_.bulk_yield) {
  if (options_.max_num_batched_tokens == 0) options_.max_num_batched_tokens = 1;
  for (Engine* engine : replicas) {
    replicas_.push_back(std::make_unique<Replica>());
    replicas_.back()->engine = engine;
  }
  replicas_up_ = batchers_running_ = replicas_.size();
  for (size_t r = 0; r < replicas_.size(); ++r) replicas_[r]->thread = std::thread([this, r] { batcher_loop(r); });
  deadline_thread_ = std::thread([this] { deadline_loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

Status Scheduler::submit(Job job) {
  if (job.inputs.empty()) return invalid_argument("a request needs at least one input");
  const EngineInfo& engine = info();
  auto q = std::make_shared<QueuedJob>();
  for (size_t i = 0; i < job.inputs.size(); ++i) {
    const size_t len = job.inputs[i].size();
    if (len == 0) return invalid_argument("input " + std::to_string(i) + " has no tokens");
    if (options_.chunked_prefill && engine.chunked_prefill) {
      // Any input within the model's positions goes, in chunks when it is long.
      const auto positions = static_cast<size_t>(engine.max_position_embeddings);
      if (positions && len > positions)
        return out_of_range("input " + std::to_string(i) + " has " + std::to_string(len) +
                            " tokens, more than the model's maximum of " + std::to_string(positions));
    } else {
      // The budget is a target, the engine's workspace the hard limit: a longer input goes alone in a batch.
      const size_t limit = std::max(options_.max_num_batched_tokens, engine.workspace_tokens);
      if (engine.workspace_tokens && len > limit)
        return out_of_range("input " + std::to_string(i) + " has " + std::to_string(len) +
                            " tokens, more than the engine accepts in one batch (" + std::to_string(limit) + ")");
    }
    q->total_tokens += len;
  }
  q->job = std::move(job);
  q->submitted = SteadyClock::now();
  q->result.vectors.resize(q->job.inputs.size() * static_cast<size_t>(engine.hidden_size));
  q->result.hidden = static_cast<size_t>(engine.hidden_size);
  q->result.prompt_tokens = q->total_tokens;
  const SteadyClock::time_point deadline = q->job.deadline;
  bool earliest = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!all_failed_.ok()) return all_failed_;
    if (stopping_) return unavailable("the server is shutting down");
    if (!queue_.admit(q))
      return resource_exhausted("the queue is full (" + std::to_string(queue_.queued_inputs()) +
                                " inputs waiting); retry shortly");
    ++queue_version_;
    if (deadline != SteadyClock::time_point::max()) {
      earliest = deadlines_.empty() || deadline < deadlines_.begin()->first;
      q->deadline_entry = deadlines_.emplace(deadline, q);
      q->in_deadlines = true;
    }
  }
  // Every idle replica may take it: one whose queue holds only inputs pinned elsewhere waits for a change.
  wake_batchers(replicas_.size() > 1);
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
    stopping_ = true;
  }
  wake_batchers(true);
  for (auto& replica : replicas_)
    if (replica->thread.joinable()) replica->thread.join();
  deadline_cv_.notify_all();
  if (deadline_thread_.joinable()) deadline_thread_.join();
}

bool Scheduler::abandon(std::chrono::milliseconds wait) {
  std::vector<std::shared_ptr<QueuedJob>> unfinished;
  bool left_engine = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    stopping_ = true;
    abandoning_ = true;
    std::vector<InterruptedInput> interrupted;
    unfinished = queue_.clear(interrupted);
    route_interrupted(interrupted);
    for (RetryBatch& retry : retries_)
      for (BatchSlot& slot : retry.slots) unfinished.push_back(slot.job);
    retries_.clear();
    wake_batchers(true);
    left_engine = batchers_done_cv_.wait_for(lock, wait, [this] { return batchers_running_ == 0; });
  }
  for (auto& q : unfinished) finish(*q, unavailable("the server shut down before this request's vectors were ready"));
  if (!left_engine) return false;
  // Every batcher has left: the engines are free to drop what the interrupted inputs hold.
  for (size_t r = 0; r < replicas_.size(); ++r) {
    std::vector<uint64_t> to_end;
    {
      std::lock_guard<std::mutex> lock(mu_);
      to_end.swap(replicas_[r]->to_end);
    }
    end_sequences(r, to_end);
  }
  shutdown();
  return true;
}

void Scheduler::deadline_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_ && (batchers_running_ == 0 || deadlines_.empty())) return;
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

void Scheduler::route_interrupted(const std::vector<InterruptedInput>& interrupted) {
  for (const InterruptedInput& input : interrupted)
    if (input.replica < replicas_.size()) replicas_[input.replica]->to_end.push_back(input.sequence);
}

void Scheduler::end_sequences(size_t r, const std::vector<uint64_t>& sequences) {
  Replica& replica = *replicas_[r];
  for (uint64_t sequence : sequences) {
    replica.engine->end_sequence(sequence);
    auto it = replica.chunk_progress.find(sequence);
    if (it == replica.chunk_progress.end()) continue;
    if (options_.on_chunks_abandoned) options_.on_chunks_abandoned(it->second.first, it->second.second);
    replica.chunk_progress.erase(it);
  }
}

SchedulerStats Scheduler::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {queue_.queued_jobs(), queue_.queued_inputs(), queue_.queued_tokens()};
}

std::vector<ReplicaStatus> Scheduler::replicas() const {
  std::vector<ReplicaStatus> out;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t r = 0; r < replicas_.size(); ++r) {
    const Replica& replica = *replicas_[r];
    out.push_back({r, replica.up, replica.batches.load(std::memory_order_relaxed),
                   replica.tokens.load(std::memory_order_relaxed), replica.fault});
  }
  return out;
}

size_t Scheduler::replicas_up() const {
  std::lock_guard<std::mutex> lock(mu_);
  return replicas_up_;
}

void Scheduler::wake_batchers(bool all) {
  doorbell_.ring();
  if (all) cv_.notify_all();
  else cv_.notify_one();
}

void Scheduler::batcher_loop(size_t r) {
  Replica& me = *replicas_[r];
  SequenceBatch batch;
  std::vector<BatchSlot> slots;
  // The queue version at which this replica last found nothing it may take; none while it found work.
  constexpr uint64_t kFoundWork = ~uint64_t{0};
  uint64_t idle_at = kFoundWork;
  for (;;) {
    std::vector<std::shared_ptr<QueuedJob>> abandoned;
    std::vector<uint64_t> to_end;
    std::optional<RetryBatch> retry;
    batch.clear();
    slots.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto has_work = [&] {
        return abandoning_ || !me.to_end.empty() || !retries_.empty() ||
               (!queue_.empty() && queue_version_ != idle_at) || (stopping_ && queue_.empty());
      };
      if (!has_work()) {
        // Poll before sleeping (scheduler/busy_poll.h): whatever would wake the condition variable rings doorbell_.
        const uint64_t seen = doorbell_.rings();
        lock.unlock();
        doorbell_.poll_past(seen);
        lock.lock();
      }
      cv_.wait(lock, has_work);
      // abandon() answers the rest itself; else stopping, and everything admitted has been handed out.
      if (abandoning_ || (stopping_ && queue_.empty() && retries_.empty() && me.to_end.empty())) break;
      if (!retries_.empty()) {
        retry = std::move(retries_.front());
        retries_.pop_front();
      } else if (!queue_.empty()) {
        const auto now = SteadyClock::now();
        const size_t jobs_before = queue_.queued_jobs();
        std::vector<InterruptedInput> interrupted;
        abandoned = queue_.sweep(now, interrupted);
        route_interrupted(interrupted);
        queue_.fill(options_.max_num_batched_tokens, batch, slots, now, r);
        if (batch.num_sequences() > 0 || queue_.queued_jobs() != jobs_before) {
          idle_at = kFoundWork;
          ++queue_version_;
          if (replicas_.size() > 1) wake_batchers(true);  // the queue moved: replicas waiting on it look again
        } else {
          idle_at = queue_version_;
        }
      }
      to_end.swap(me.to_end);
    }
    // Inputs dropped part-way through their chunks stop here: their keys and values are freed before the next call.
    end_sequences(r, to_end);
    // Callbacks run outside the lock so a slow one cannot hold up submit().
    std::vector<QueuedJob*> done;
    for (auto& q : abandoned) {
      const bool cancelled = q->job.cancelled && q->job.cancelled->load(std::memory_order_relaxed);
      finish(*q, cancelled ? Status(ErrorCode::kCancelled, "the client went away")
                           : Status(ErrorCode::kDeadlineExceeded, "the request timed out in the queue"));
      done.push_back(q.get());
    }
    BatchOutcome outcome = BatchOutcome::kDone;
    if (retry) {
      outcome = run_batch(r, retry->batch, retry->slots, true);
      for (const BatchSlot& slot : retry->slots)
        if (slot.job->finished.load()) done.push_back(slot.job.get());
    } else if (batch.num_sequences() > 0) {
      outcome = run_batch(r, batch, slots, false);
      for (const BatchSlot& slot : slots)
        if (slot.job->finished.load()) done.push_back(slot.job.get());
    }
    if (!done.empty()) forget_deadlines(done);
    slots.clear();  // drop the batch's references so finished jobs are freed now
    if (outcome == BatchOutcome::kReplicaFailed) return;  // fail_replica counted it out of the running batchers
  }
  std::lock_guard<std::mutex> lock(mu_);
  --batchers_running_;
  batchers_done_cv_.notify_all();
  deadline_cv_.notify_all();
  wake_batchers(true);
}

Scheduler::BatchOutcome Scheduler::run_batch(size_t r, const SequenceBatch& batch, std::vector<BatchSlot>& slots,
                                             bool retried) {
  Replica& me = *replicas_[r];
  const size_t hidden = static_cast<size_t>(info().hidden_size);
  std::vector<float> out(batch.num_sequences() * hidden);  // f32 [n_seqs, hidden]
  const auto start = SteadyClock::now();
  {
    // Inputs of one job may run on several replicas at once: the job's bookkeeping is shared.
    std::lock_guard<std::mutex> lock(results_mu_);
    for (auto& s : slots) {
      if (s.job->queue_timed) continue;
      s.job->queue_timed = true;
      s.job->result.queue_seconds = seconds_between(s.job->submitted, start);
    }
  }
  // A batch the engine refuses is the batch's fault; one it accepts and then fails is the engine's, except for
  // running out of memory for this batch (an input's keys and values that do not fit now): the device still works.
  Status st = me.engine->validate(batch, out);
  const bool engine_fault = st.ok() && !(st = me.engine->embed(batch, out)).ok() &&
                            st.code() != ErrorCode::kResourceExhausted;
  const double compute = seconds_between(start, SteadyClock::now());
  me.batches.fetch_add(1, std::memory_order_relaxed);
  if (st.ok()) me.tokens.fetch_add(batch.num_tokens(), std::memory_order_relaxed);
  if (options_.on_batch)
    options_.on_batch({batch.num_sequences(), batch.num_tokens(), compute, st.ok(), batch.chunk.has_value(),
                       !batch.ends_sequences(), r});
  // A chunk before its input's last returns no vector: its job only gains compute time (or fails).
  const bool vectors = batch.ends_sequences();
  if (batch.chunk) {
    if (vectors || !st.ok()) me.chunk_progress.erase(batch.chunk->sequence);
    else me.chunk_progress[batch.chunk->sequence] = {batch.chunk->start + batch.num_tokens(), batch.chunk->total};
  }
  if (engine_fault) {
    fail_replica(r, st, batch, slots, retried);
    return BatchOutcome::kReplicaFailed;
  }

  std::vector<QueuedJob*> completed;
  {
    std::lock_guard<std::mutex> lock(results_mu_);
    std::unordered_set<QueuedJob*> seen;  // a job's compute time counts each batch once
    for (size_t row = 0; row < slots.size(); ++row) {
      QueuedJob& q = *slots[row].job;
      if (q.finished) continue;
      if (!st.ok()) continue;  // failed below, outside the lock
      if (seen.insert(&q).second) q.result.compute_seconds += compute;
      if (!vectors) continue;
      std::copy_n(out.data() + row * hidden, hidden, q.result.vectors.data() + slots[row].input * hidden);
      if (++q.done_inputs == q.job.inputs.size()) completed.push_back(&q);
    }
  }
  for (BatchSlot& slot : slots) {
    // Only the jobs in this batch fail; their undispatched inputs are swept at the next fill.
    if (!st.ok()) finish(*slot.job, st.with_context("embedding failed"));
  }
  // The last input of each is back: nothing writes its result any more.
  for (QueuedJob* q : completed) finish(*q, std::move(q->result));
  return BatchOutcome::kDone;
}

void Scheduler::fail_replica(size_t r, const Status& fault, const SequenceBatch& batch, std::vector<BatchSlot>& slots,
                             bool retried) {
  Replica& me = *replicas_[r];
  std::vector<std::shared_ptr<QueuedJob>> lost;  // answered with `unavailable` below
  Status lost_why;
  Status last_fault;
  size_t left = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    me.up = false;
    me.fault = fault.message();
    --replicas_up_;
    --batchers_running_;
    left = replicas_up_;
    // Inputs part-way through their chunks here cannot continue elsewhere: their keys and values were here.
    lost = queue_.remove_pinned_to(r);
    me.to_end.clear();
    lost_why = unavailable("engine replica " + std::to_string(r) + " failed while it held this request's " +
                           "input part-way through its chunks (" + fault.message() + "); retry the request");
    const bool another = left > 0 && batchers_running_ > 0;
    if (batch.chunk) {
      for (BatchSlot& slot : slots) lost.push_back(slot.job);
    } else if (!retried && another) {
      retries_.push_back({batch, std::move(slots), r});
      slots.clear();
    }
    if (left == 0) {
      // No replica is left: refuse new work and answer everything admitted.
      all_failed_ = unavailable("every engine replica has failed (the last: " + fault.message() +
                                "); the server is stopping");
      stopping_ = true;
      std::vector<InterruptedInput> interrupted;
      for (auto& q : queue_.clear(interrupted)) lost.push_back(std::move(q));
      for (RetryBatch& retry : retries_)
        for (BatchSlot& slot : retry.slots) lost.push_back(slot.job);
      retries_.clear();
      last_fault = fault;
    }
    ++queue_version_;
    batchers_done_cv_.notify_all();
    deadline_cv_.notify_all();
  }
  wake_batchers(true);
  if (options_.on_replica_failed) options_.on_replica_failed(r, fault, left);
  // The batch itself when it was not handed on: a retry that failed too, or no other replica to take it.
  const Status batch_failed =
      left == 0 ? all_failed_
                : unavailable("the engine failed on this request's batch" +
                              std::string(retried ? " on two replicas" : "") + " (" + fault.message() +
                              "); retry the request");
  for (BatchSlot& slot : slots)
    if (!batch.chunk) finish(*slot.job, batch_failed);
  for (auto& q : lost) finish(*q, left == 0 ? all_failed_ : lost_why);
  if (left == 0 && options_.on_all_replicas_failed) options_.on_all_replicas_failed(last_fault);
}

}  // namespace embedserve
