// ThreadGroupState: the rank threads' barrier and the sliced in-place sum of their buffers.
#include "ops/cpu/thread_group.h"

#include <string>

namespace embedserve::ops::cpu {
namespace {

Status aborted() { return unavailable("the tensor-parallel group was aborted: another rank failed"); }

}  // namespace

Status ThreadGroupState::arrive_and_wait() {
  const uint64_t generation = generation_.load(std::memory_order_acquire);
  if (aborted_.load(std::memory_order_acquire)) return aborted();
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == size_) {
    arrived_.store(0, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_acq_rel);  // releases the others
    generation_.notify_all();
  } else {
    uint64_t seen = generation;
    while (seen == generation) {
      generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
    }
  }
  if (aborted_.load(std::memory_order_acquire)) return aborted();
  return Status();
}

void ThreadGroupState::abort() {
  aborted_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
}

void ThreadGroupState::reset() {
  arrived_.store(0, std::memory_order_relaxed);
  aborted_.store(false, std::memory_order_release);
}

Status ThreadGroupState::all_reduce(int rank, float* data, size_t count) {
  buffers_[static_cast<size_t>(rank)] = data;
  counts_[static_cast<size_t>(rank)] = count;
  EMBEDSERVE_RETURN_IF_ERROR(arrive_and_wait());
  for (int q = 0; q < size_; ++q)
    if (counts_[static_cast<size_t>(q)] != count)  // every rank sees the same counts: all fail alike, no one waits
      return internal_error("all_reduce: rank " + std::to_string(rank) + " reduces " + std::to_string(count) +
                            " values but rank " + std::to_string(q) + " " + std::to_string(counts_[static_cast<size_t>(q)]));
  // This rank's slice of the elements, summed over the ranks in rank order and written back to every rank's
  // buffer. Nobody else reads or writes the slice, so no barrier is needed between reading and writing it.
  const size_t begin = count * static_cast<size_t>(rank) / static_cast<size_t>(size_);
  const size_t end = count * static_cast<size_t>(rank + 1) / static_cast<size_t>(size_);
  float* const* buffers = buffers_.data();
  const int size = size_;
#pragma omp parallel for schedule(static)
  for (size_t i = begin; i < end; ++i) {
    float s = buffers[0][i];
    for (int q = 1; q < size; ++q) s += buffers[q][i];
    for (int q = 0; q < size; ++q) buffers[q][i] = s;
  }
  // No rank may reuse its buffer (or start the next collective) before every slice is written.
  return arrive_and_wait();
}

std::vector<std::shared_ptr<Communicator>> create_thread_group(int size) {
  auto group = std::make_shared<ThreadGroupState>(size);
  std::vector<std::shared_ptr<Communicator>> ranks;
  for (int r = 0; r < size; ++r) ranks.push_back(std::make_shared<ThreadGroupCommunicator>(group, r));
  return ranks;
}

}  // namespace embedserve::ops::cpu
