// The CUDA backend's tensor-parallel group: one NCCL communicator per rank's GPU, all made at once in this process.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/status.h"
#include "ops/communicator.h"
#include "ops/cuda/nccl_loader.h"
#include "ops/cuda/peer_group.h"

namespace embedserve::ops::cuda_backend {

class NcclCommunicator final : public Communicator {
 public:
  // How many sums may be in flight (started, not yet joined) at once: the events of start_all_reduce form a ring
  // of this many, and a slot is reused only once its sum has been joined (the model keeps at most four).
  static constexpr size_t kInFlight = 8;

  NcclCommunicator(std::shared_ptr<const cuda::NcclApi> api, ncclComm_t comm, int rank, int size, int ordinal)
      : api_(std::move(api)), comm_(comm), rank_(rank), size_(size), ordinal_(ordinal) {}
  ~NcclCommunicator() override;
  // The rank's own stream and events for start_all_reduce, made on its GPU (which must be current).
  Status create_stream();
  Device device() const override { return Device::kCuda; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void abort() override;
  bool reset() override { return false; }
  bool reads_peers() const override { return peer_ != nullptr; }
  // The group's sums by peer reads (nullptr: NCCL's), and why not where the GPUs lack peer access (for the
  // start-up line).
  PeerRank* peer() const { return peer_.get(); }
  void use_peer_reads(std::unique_ptr<PeerRank> peer, std::string why_not) {
    peer_ = std::move(peer);
    why_no_peer_reads_ = std::move(why_not);
  }
  std::string description() const override;
  // data [count] of `type` summed over the ranks in place, enqueued on `stream` (the rank's context's stream).
  Status all_reduce(void* data, size_t count, ncclDataType_t type, cudaStream_t stream);
  // The same sum on the communicator's own stream, started once `compute` (the context's stream) has reached this
  // point, and followed there by `then` (the rounding of an f32 sum into the context's dtype), so the work issued
  // on `compute` afterwards runs beside it. Returns the ticket join() takes.
  StatusOr<uint64_t> start_all_reduce(void* data, size_t count, ncclDataType_t type, cudaStream_t compute,
                                      const std::function<Status(cudaStream_t)>& then);
  // Makes `compute` wait (on the GPU, not the host) for the sum of `ticket`.
  Status join(uint64_t ticket, cudaStream_t compute);

 private:
  std::shared_ptr<const cuda::NcclApi> api_;
  ncclComm_t comm_;
  std::atomic<bool> aborted_{false};
  int rank_, size_, ordinal_;
  cudaStream_t stream_ = nullptr;                     // where started sums run
  std::array<cudaEvent_t, kInFlight> reached_{};      // the compute stream reached a sum's start
  std::array<cudaEvent_t, kInFlight> summed_{};       // the sum (and its rounding) is done
  std::array<bool, kInFlight> in_flight_{};           // a slot's sum was started and not yet joined
  uint64_t started_ = 0;                              // tickets issued (one rank thread calls these)
  std::unique_ptr<PeerRank> peer_;
  std::string why_no_peer_reads_;
};

// ncclCommInitAll over `ordinals` (one rank per GPU, rank r on ordinals[r]), after forcing NCCL_NVLS_ENABLE=0;
// with peer_reads, the group sums by peer reads where every pair of GPUs has peer access.
StatusOr<std::vector<std::shared_ptr<Communicator>>> create_nccl_group(const std::vector<int>& ordinals,
                                                                     const std::string& nccl_path, bool peer_reads);

// sum T [n] = T(partial f32 [n]): the one rounding of an all-reduce of f32 partials on a bf16 context.
template <typename T>
Status round_sum(const float* partial, T* sum, int64_t n, cudaStream_t stream);

}  // namespace embedserve::ops::cuda_backend
