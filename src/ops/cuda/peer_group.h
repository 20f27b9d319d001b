// PeerGroup: what the GPUs of one in-process tensor-parallel group share to sum by reading each other's memory
// (ops/cuda/peer_sum_cuda.h): peer access between every pair, each GPU's flags, an abort flag, and each rank's
// buffer of partials.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/status.h"
#include "ops/cuda/peer_sum_cuda.h"

namespace embedserve::ops::cuda_backend {

class PeerGroup;

// One rank's side: what its sums need of the group, and its count of sums (the epoch).
class PeerRank {
 public:
  PeerRank(std::shared_ptr<PeerGroup> group, int rank) : group_(std::move(group)), rank_(rank) {}
  // The buffer this rank writes its partials into, offered to the others (once, at load; pointers stay valid for
  // the group's life). It is two halves, and consecutive sums must read partials from alternate halves: a rank
  // writes a half again only after the sum that read the other half has started, by which time every rank has
  // finished reading the first (peer_sum does not wait at its end).
  Status share(void* data, size_t bytes);
  // sum [count] = Σ over ranks of their partial at the same offset in their shared buffers, on `stream` (see
  // peer_sum). Every rank calls it in the same order with the same counts.
  Status sum(const void* partial, bool f32_partials, void* out, bool f32_sum, int64_t count, cudaStream_t stream);
  // The same sum, then residual += sum and out = rms_norm(residual) · weight (peer_sum_add_rms_norm), T the
  // context's dtype.
  template <typename T>
  Status sum_add_rms_norm(const void* partial, bool f32_partials, T* residual, const T* weight, T* out, int64_t rows,
                          int64_t cols, float eps, cudaStream_t stream);
  // The half of the shared buffer the next sum's partial must lie in: the other one from the last sum's.
  int next_half() const { return last_half_ == 0 ? 1 : 0; }
  // Releases every sum waiting, now or later, for a rank that will not come (their results are garbage).
  void abort();

 private:
  // The next sum's arguments for `partial` (checked against the shared buffer and the halves' alternation).
  StatusOr<PeerSumArgs> next_sum(const void* partial, bool f32_partials, int64_t count);

  std::shared_ptr<PeerGroup> group_;
  int rank_;
  uint32_t epoch_ = 0;
  int last_half_ = -1;  // which half of the shared buffer the last sum read
  bool have_bases_ = false;
  std::array<const char*, kMaxPeerRanks> bases_{};  // every rank's shared buffer, once all have shared theirs
  size_t bytes_ = 0;
};

// Made for GPUs `ordinals` (rank r on ordinals[r]) when every pair has peer access; an error says which pair
// lacks it (the caller then sums with NCCL). Enables peer access between every pair.
StatusOr<std::vector<std::unique_ptr<PeerRank>>> create_peer_group(const std::vector<int>& ordinals);

}  // namespace embedserve::ops::cuda_backend
