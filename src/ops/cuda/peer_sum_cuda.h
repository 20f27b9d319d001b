// peer_sum: a tensor-parallel all-reduce inside one process, each GPU reading the other ranks' partials straight
// from their memory (peer access over NVLink): no NCCL, no copy, no host round trip. Alone, or fused with the
// residual add and RMSNorm that follow every sum of a decoder layer.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::ops::cuda_backend {

constexpr int kMaxPeerRanks = 8;
// Each GPU's flags (in its memory): [q] the last sum rank q has reached (written by rank q), then one word this
// rank's barrier sets when the group was aborted, which tells the sum after it to skip its reads.
constexpr int kPeerFlagWords = kMaxPeerRanks + 1;

struct PeerSumArgs {
  const void* partial[kMaxPeerRanks] = {};  // rank r's partial, in its GPU's memory (this rank's own among them)
  uint32_t* flags[kMaxPeerRanks] = {};      // rank r's flags [kPeerFlagWords], in its GPU's memory
  const volatile int* abort = nullptr;      // host memory mapped into every GPU: non-zero releases every wait
  int64_t count = 0;                        // elements of each partial
  int ranks = 0, rank = 0;
  uint32_t epoch = 0;        // this sum's number, the same on every rank (1, 2, …; wraps)
  bool f32_partials = true;  // else the sum's dtype (bf16)
};

// Each of these first runs the group's barrier (one block: this rank tells every other that it has reached the
// sum, then waits until each has): no rank reads another's partial before that rank's stream has reached the sum,
// i.e. before the kernels that wrote it have ended. Then every element is summed over the ranks in rank order in
// f32 and rounded once into the context's dtype: every rank gets the same bits, and two ranks' bits equal NCCL's.
// Neither waits at its end: a rank may write its partial again only after the *next* sum's barrier (PeerRank
// alternates the halves of the shared buffer), which every rank's reads of this one precede.

// sum [count] (f32 or bf16) = Σ_r partial[r].
Status peer_sum(const PeerSumArgs& args, void* sum, bool f32_sum, cudaStream_t stream);

// The same sum, then residual += sum and out = rms_norm(residual) · weight row by row ([rows, cols] dense, T the
// context's dtype: float or __nv_bfloat16), bitwise what peer_sum followed by add_rms_norm gives (the same row
// helpers), in one pass: the sum never goes to memory.
template <typename T>
Status peer_sum_add_rms_norm(const PeerSumArgs& args, T* residual, const T* weight, T* out, int64_t rows, int64_t cols,
                             float eps, cudaStream_t stream);

}  // namespace embedserve::ops::cuda_backend
