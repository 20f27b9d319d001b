// The CUDA backend's tensor-parallel group: one NCCL communicator per rank's GPU, all made at once in this process.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <memory>
#include <vector>

#include "core/status.h"
#include "ops/communicator.h"
#include "ops/cuda/nccl_loader.h"

namespace embedserve::ops::cuda_backend {

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<const cuda::NcclApi> api, ncclComm_t comm, int rank, int size, int ordinal)
      : api_(std::move(api)), comm_(comm), rank_(rank), size_(size), ordinal_(ordinal) {}
  ~NcclCommunicator() override;
  Device device() const override { return Device::kCuda; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void abort() override;
  bool reset() override { return false; }
  std::string description() const override;
  // data [count] of `type` summed over the ranks in place, enqueued on `stream` (the rank's context's stream).
  Status all_reduce(void* data, size_t count, ncclDataType_t type, cudaStream_t stream);

 private:
  std::shared_ptr<const cuda::NcclApi> api_;
  ncclComm_t comm_;
  std::atomic<bool> aborted_{false};
  int rank_, size_, ordinal_;
};

// ncclCommInitAll over `ordinals` (one rank per GPU, rank r on ordinals[r]), after forcing NCCL_NVLS_ENABLE=0.
StatusOr<std::vector<std::shared_ptr<Communicator>>> create_nccl_group(const std::vector<int>& ordinals,
                                                                     const std::string& nccl_path);

// sum T [n] = T(partial f32 [n]): the one rounding of an all-reduce of f32 partials on a bf16 context.
template <typename T>
Status round_sum(const float* partial, T* sum, int64_t n, cudaStream_t stream);

}  // namespace embedserve::ops::cuda_backend
