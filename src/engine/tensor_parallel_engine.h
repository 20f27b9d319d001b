// TensorParallelEngine: one model split over several ranks (GPUs, or threads on the CPU), each rank a ModelEngine
// holding its share of every layer and running on a thread of its own; the ranks meet in ops::all_reduce.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <semaphore>
#include <span>
#include <thread>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/engine_options.h"
#include "engine/model_engine.h"
#include "ops/communicator.h"

namespace embedserve {

class TensorParallelEngine final : public Engine {
 public:
  // Checks that the model's heads and MLP divide among options.tensor_parallel ranks, makes the group (NCCL over
  // GPUs device_ordinal … device_ordinal + N − 1, or rank threads on the CPU) and loads every rank's share, the
  // ranks in parallel.
  static StatusOr<std::unique_ptr<TensorParallelEngine>> load(const EngineOptions& options, Device device);
  ~TensorParallelEngine() override;

  void end_sequence(uint64_t sequence) override;
  size_t sequences_in_progress() const override { return ranks_.front()->engine->sequences_in_progress(); }

 protected:
  // Hands the batch to every rank and waits for all; `out` gets rank 0's vectors (every rank computes the same
  // after the last all-reduce). A rank that fails fails the call, naming the rank and its GPU: the group is
  // aborted so no rank waits forever for it, and on CUDA it stays unusable (every later call says so).
  Status run(const SequenceBatch& batch, std::span<float> out) override;

 private:
  struct Rank {
    std::unique_ptr<ModelEngine> engine;
    std::vector<float> scratch;  // ranks past 0: their copy of the vectors, unread
    Status result;
    std::binary_semaphore start{0}, done{0};
    std::thread thread;
  };
  TensorParallelEngine(EngineInfo info, std::vector<std::shared_ptr<ops::Communicator>> group,
                       std::vector<std::unique_ptr<Rank>> ranks);
  void serve(size_t rank);  // a rank thread's loop
  // Whether every rank's last call succeeded; else the status to return (the first rank that failed).
  Status collect();

  std::vector<std::shared_ptr<ops::Communicator>> group_;
  std::vector<std::unique_ptr<Rank>> ranks_;
  // The call in progress, set before the ranks are released and read by them only until they signal done.
  const SequenceBatch* batch_ = nullptr;
  std::span<float> out_;
  std::atomic<int> first_failure_{-1};  // the first rank whose call failed in the call in progress
  std::atomic<bool> stopping_{false};
  Status broken_;  // set once an aborted group cannot be reset (NCCL): every later call returns it
};

}  // namespace embedserve
