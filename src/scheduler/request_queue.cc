// RequestQueue: admission limits, sweeping of abandoned jobs, and the two-lane packing policy.
#include "scheduler/request_queue.h"

#include <algorithm>
#include <span>

namespace embedserve {

RequestQueue::RequestQueue(size_t interactive_max_tokens, double interactive_weight, QueueLimits limits,
                           size_t chunk_tokens, size_t chunk_above, BulkYield yield)
    : interactive_max_tokens_(interactive_max_tokens), weights_{std::max(interactive_weight, 1e-3), 1.0},
      limits_(limits), chunk_tokens_(chunk_tokens), chunk_above_(chunk_above), yield_(yield) {}

bool RequestQueue::admit(std::shared_ptr<QueuedJob> job) {
  const size_t n_inputs = job->job.inputs.size();
  if (!empty()) {
    if (limits_.max_inputs && queued_inputs_ + n_inputs > limits_.max_inputs) return false;
    if (limits_.max_tokens && queued_tokens_ + job->total_tokens > limits_.max_tokens) return false;
  }
  queued_inputs_ += n_inputs;
  queued_tokens_ += job->total_tokens;
  job->interactive = !job->job.bulk && job->total_tokens <= interactive_max_tokens_;
  if (job->interactive) last_interactive_ = job->submitted;
  lanes_[job->interactive ? kInteractive : kBulk].push_back(std::move(job));
  return true;
}

void RequestQueue::forget(const QueuedJob& job) {
  for (size_t i = job.next_input; i < job.job.inputs.size(); ++i) {
    queued_inputs_ -= 1;
    queued_tokens_ -= job.job.inputs[i].size() - (i == job.next_input ? job.chunk_start : 0);
  }
}

std::vector<std::shared_ptr<QueuedJob>> RequestQueue::sweep(SteadyClock::time_point now,
                                                            std::vector<InterruptedInput>& interrupted) {
  std::vector<std::shared_ptr<QueuedJob>> abandoned;
  for (auto& lane : lanes_) {
    auto keep = std::remove_if(lane.begin(), lane.end(), [&](const std::shared_ptr<QueuedJob>& q) {
      const bool cancelled = q->job.cancelled && q->job.cancelled->load(std::memory_order_relaxed);
      const bool expired = now >= q->job.deadline;
      const bool finished = q->finished.load();
      if (!finished && !cancelled && !expired) return false;
      forget(*q);
      if (q->chunk_start > 0) interrupted.push_back({q->sequence, q->replica});
      if (!finished) abandoned.push_back(q);
      return true;
    });
    lane.erase(keep, lane.end());
  }
  return abandoned;
}

std::vector<std::shared_ptr<QueuedJob>> RequestQueue::clear(std::vector<InterruptedInput>& interrupted) {
  std::vector<std::shared_ptr<QueuedJob>> unfinished;
  for (auto& lane : lanes_) {
    for (auto& q : lane) {
      forget(*q);
      if (q->chunk_start > 0) interrupted.push_back({q->sequence, q->replica});
      if (!q->finished.load()) unfinished.push_back(q);
    }
    lane.clear();
  }
  return unfinished;
}

std::vector<std::shared_ptr<QueuedJob>> RequestQueue::remove_pinned_to(size_t replica) {
  std::vector<std::shared_ptr<QueuedJob>> removed;
  for (auto& lane : lanes_) {
    auto keep = std::remove_if(lane.begin(), lane.end(), [&](const std::shared_ptr<QueuedJob>& q) {
      if (q->chunk_start == 0 || q->replica != replica) return false;
      forget(*q);
      if (!q->finished.load()) removed.push_back(q);
      return true;
    });
    lane.erase(keep, lane.end());
  }
  return removed;
}

size_t RequestQueue::take(Lane lane, size_t budget, SequenceBatch& batch, std::vector<BatchSlot>& slots,
                          size_t replica) {
  size_t taken = 0;
  auto& q = lanes_[lane];
  size_t j = 0;  // the job looked at; jobs before it are pinned to other replicas
  while (j < q.size() && !batch.chunk) {
    QueuedJob& job = *q[j];
    const auto& ids = job.job.inputs[job.next_input];
    if (chunk_tokens_ && ids.size() > chunk_above_) {
      // Part-way through its chunks on another replica: only that engine holds its keys and values.
      if (job.chunk_start > 0 && job.replica != replica) {
        ++j;
        continue;
      }
      // Chunked prefill: the input's next chunk rides alone; the input stays in its lane until its last.
      if (batch.num_tokens() > 0) break;
      if (job.chunk_start == 0) {
        job.sequence = next_sequence_++;
        job.replica = replica;
      }
      const size_t len = std::min(chunk_tokens_, ids.size() - job.chunk_start);
      batch.add(std::span<const int32_t>(ids).subspan(job.chunk_start, len), job.job.raw_vectors);
      batch.chunk = SequenceChunk{job.sequence, job.chunk_start, ids.size()};
      slots.push_back({q[j], job.next_input});
      job.chunk_start += len;
      taken += len;
      queued_tokens_ -= len;
      if (job.chunk_start < ids.size()) break;
      job.chunk_start = 0;
      job.next_input += 1;
      queued_inputs_ -= 1;
      if (job.next_input == job.job.inputs.size()) q.erase(q.begin() + static_cast<std::ptrdiff_t>(j));
      break;
    }
    // An input longer than the budget (--context-length above --max-num-batched-tokens) rides alone.
    if (batch.num_tokens() > 0 && batch.num_tokens() + ids.size() > budget) break;
    batch.add(ids, job.job.raw_vectors);
    slots.push_back({q[j], job.next_input});
    job.next_input += 1;
    taken += ids.size();
    queued_inputs_ -= 1;
    queued_tokens_ -= ids.size();
    // Fully dispatched: out of the lane (the slots keep it alive), and the next job takes its place at j.
    if (job.next_input == job.job.inputs.size()) q.erase(q.begin() + static_cast<std::ptrdiff_t>(j));
  }
  return taken;
}

void RequestQueue::fill(size_t budget, SequenceBatch& batch, std::vector<BatchSlot>& slots,
                        SteadyClock::time_point now, size_t replica) {
  batch.clear();
  slots.clear();
  for (int l = 0; l < 2; ++l)
    if (lanes_[l].empty()) clock_[l] = std::max(clock_[l], clock_[1 - l]);
  const Lane first = clock_[kInteractive] <= clock_[kBulk] ? kInteractive : kBulk;
  const Lane second = first == kInteractive ? kBulk : kInteractive;
  const bool yielding = yield_.tokens > 0 && last_interactive_ && now - *last_interactive_ < yield_.recent;
  auto lane_budget = [&](Lane lane) {
    // Bulk fills up to the cap on top of what the interactive lane took (an empty batch still takes one input).
    return lane == kBulk && yielding ? std::min(budget, batch.num_tokens() + yield_.tokens) : budget;
  };
  clock_[first] += static_cast<double>(take(first, lane_budget(first), batch, slots, replica)) / weights_[first];
  clock_[second] += static_cast<double>(take(second, lane_budget(second), batch, slots, replica)) / weights_[second];
}

}  // namespace embedserve
