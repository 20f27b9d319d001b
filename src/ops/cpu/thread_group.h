// The CPU's tensor-parallel group: ranks are threads of one process, and all-reduce sums their buffers in place
// through shared memory between two barriers. Makes `--tp N --device cpu` real, so the sharded model is tested
// without GPUs.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/status.h"
#include "ops/communicator.h"

namespace embedserve::ops::cpu {

// What the ranks of one group share: each rank's buffer of the collective in progress, and a barrier built on
// atomics (wait/notify: a futex, no lock), which abort() opens for good.
class ThreadGroupState {
 public:
  explicit ThreadGroupState(int size)
      : size_(size), buffers_(static_cast<size_t>(size)), counts_(static_cast<size_t>(size)) {}
  int size() const { return size_; }
  // Rank `rank`'s part of one all-reduce of `count` floats at `data` (see ThreadGroupCommunicator::all_reduce).
  Status all_reduce(int rank, float* data, size_t count);
  void abort();
  void reset();

 private:
  // Blocks until every rank has arrived (or the group is aborted: then an error).
  Status arrive_and_wait();
  const int size_;
  std::vector<float*> buffers_;  // written by each rank for itself before the first barrier, read after it
  std::vector<size_t> counts_;
  std::atomic<int> arrived_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> aborted_{false};
};

class ThreadGroupCommunicator final : public Communicator {
 public:
  ThreadGroupCommunicator(std::shared_ptr<ThreadGroupState> group, int rank) : group_(std::move(group)), rank_(rank) {}
  Device device() const override { return Device::kCpu; }
  int rank() const override { return rank_; }
  int size() const override { return group_->size(); }
  void abort() override { group_->abort(); }
  bool reset() override {
    group_->reset();
    return true;
  }
  std::string description() const override { return "in-process rank threads"; }
  // data f32 [count] = the sum over the ranks of their data, in rank order (every rank gets the same bits). Each
  // rank sums one slice of the elements for all ranks, so the work is spread like a reduce-scatter.
  Status all_reduce(float* data, size_t count) { return group_->all_reduce(rank_, data, count); }

 private:
  std::shared_ptr<ThreadGroupState> group_;
  int rank_;
};

// `size` communicators of one new group, index = rank.
std::vector<std::shared_ptr<Communicator>> create_thread_group(int size);

}  // namespace embedserve::ops::cpu
