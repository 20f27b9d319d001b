// PeerGroup: peer access, flags and shared buffers of an in-process group, and each rank's checks before a sum.
#include "ops/cuda/peer_group.h"

#include <cuda_bf16.h>

#include <chrono>
#include <condition_variable>
#include <string>

#include "ops/cuda/cuda_check.h"

namespace embedserve::ops::cuda_backend {

class PeerGroup {
 public:
  explicit PeerGroup(std::vector<int> ordinals)
      : ordinals(std::move(ordinals)), flags(this->ordinals.size()), shared(this->ordinals.size()) {}
  ~PeerGroup() {
    int previous = -1;
    cudaGetDevice(&previous);
    for (size_t r = 0; r < flags.size(); ++r)
      if (flags[r] && cudaSetDevice(ordinals[r]) == cudaSuccess) cudaFree(flags[r]);
    if (abort_host) cudaFreeHost(abort_host);
    if (previous >= 0) cudaSetDevice(previous);
  }
  PeerGroup(const PeerGroup&) = delete;
  PeerGroup& operator=(const PeerGroup&) = delete;

  const std::vector<int> ordinals;
  std::vector<uint32_t*> flags;  // rank r's arrival flags, on its GPU
  int* abort_host = nullptr;     // pinned, mapped into every GPU (portable)
  const int* abort_device = nullptr;
  std::mutex mu;  // guards shared
  std::condition_variable shared_one;  // a rank shared its buffer
  struct Shared {
    const char* data = nullptr;
    size_t bytes = 0;
  };
  std::vector<Shared> shared;  // each rank's buffer of partials, once it has offered it
};

Status PeerRank::share(void* data, size_t bytes) {
  if (!data || bytes == 0 || bytes % 2 != 0) return internal_error("PeerRank::share: a buffer of two halves is needed");
  {
    std::lock_guard lock(group_->mu);
    group_->shared[static_cast<size_t>(rank_)] = {static_cast<const char*>(data), bytes};
  }
  group_->shared_one.notify_all();
  return Status();
}

StatusOr<PeerSumArgs> PeerRank::next_sum(const void* partial, bool f32_partials, int64_t count) {
  const int ranks = static_cast<int>(group_->ordinals.size());
  if (!have_bases_) {
    // The first sum. A rank that has not shared its buffer yet is still loading (ranks load at once; an engine's
    // first batch comes after every rank has loaded, but nothing else need wait for that): wait a while for it.
    // A rank that gives up must not launch: the others' kernels would wait for it until the group is aborted.
    std::unique_lock lock(group_->mu);
    const auto all_shared = [&] {
      for (const PeerGroup::Shared& s : group_->shared)
        if (!s.data) return false;
      return true;
    };
    group_->shared_one.wait_for(lock, std::chrono::seconds(60), all_shared);
    for (int r = 0; r < ranks; ++r) {
      const PeerGroup::Shared& s = group_->shared[static_cast<size_t>(r)];
      if (!s.data)
        return internal_error("peer sum: rank " + std::to_string(r) + " has not shared its partials in 60 s");
      if (s.bytes != group_->shared[0].bytes)
        return internal_error("peer sum: the ranks shared buffers of partials of different sizes");
      bases_[static_cast<size_t>(r)] = s.data;
    }
    bytes_ = group_->shared[0].bytes;
    have_bases_ = true;
  }
  const size_t len = static_cast<size_t>(count) * (f32_partials ? 4 : 2);
  const char* mine = bases_[static_cast<size_t>(rank_)];
  const auto* p = static_cast<const char*>(partial);
  const size_t half_bytes = bytes_ / 2;
  if (p < mine || p + len > mine + bytes_)
    return internal_error("peer sum: a partial outside this rank's shared buffer");
  const size_t offset = static_cast<size_t>(p - mine);
  const int half = offset < half_bytes ? 0 : 1;
  if (half == 0 && offset + len > half_bytes) return internal_error("peer sum: a partial across both halves");
  if (half == last_half_)
    return internal_error("peer sum: two sums in a row read the same half of the shared partials (a rank could "
                          "overwrite a partial another still reads); alternate them");
  last_half_ = half;
  PeerSumArgs a;
  for (int r = 0; r < ranks; ++r) {
    a.partial[r] = bases_[static_cast<size_t>(r)] + offset;
    a.flags[r] = group_->flags[static_cast<size_t>(r)];
  }
  a.abort = group_->abort_device;
  a.count = count;
  a.ranks = ranks;
  a.rank = rank_;
  a.epoch = ++epoch_;
  a.f32_partials = f32_partials;
  return a;
}

Status PeerRank::sum(const void* partial, bool f32_partials, void* out, bool f32_sum, int64_t count,
                     cudaStream_t stream) {
  EMBEDSERVE_ASSIGN_OR_RETURN(const PeerSumArgs a, next_sum(partial, f32_partials, count));
  return peer_sum(a, out, f32_sum, stream);
}

template <typename T>
Status PeerRank::sum_add_rms_norm(const void* partial, bool f32_partials, T* residual, const T* weight, T* out,
                                  int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  EMBEDSERVE_ASSIGN_OR_RETURN(const PeerSumArgs a, next_sum(partial, f32_partials, rows * cols));
  return peer_sum_add_rms_norm<T>(a, residual, weight, out, rows, cols, eps, stream);
}

template Status PeerRank::sum_add_rms_norm<float>(const void*, bool, float*, const float*, float*, int64_t, int64_t,
                                                  float, cudaStream_t);
template Status PeerRank::sum_add_rms_norm<__nv_bfloat16>(const void*, bool, __nv_bfloat16*, const __nv_bfloat16*,
                                                          __nv_bfloat16*, int64_t, int64_t, float, cudaStream_t);

void PeerRank::abort() { *static_cast<volatile int*>(group_->abort_host) = 1; }

StatusOr<std::vector<std::unique_ptr<PeerRank>>> create_peer_group(const std::vector<int>& ordinals) {
  const int n = static_cast<int>(ordinals.size());
  if (n < 2 || n > kMaxPeerRanks)
    return unavailable("sums by peer reads take 2 to " + std::to_string(kMaxPeerRanks) + " GPUs, not " +
                               std::to_string(n));
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      if (i == j) continue;
      int can = 0, atomics = 0;
      EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaDeviceCanAccessPeer(&can, ordinals[i], ordinals[j]));
      if (!can)
        return unavailable("GPU " + std::to_string(ordinals[i]) + " cannot read GPU " + std::to_string(ordinals[j]) +
                           "'s memory (no peer access)");
      // Native atomics between two GPUs mean a direct link (NVLink); over PCIe peer reads crawl next to NCCL's
      // transports, so such a pair sums with NCCL.
      EMBEDSERVE_CUDA_RETURN_IF_ERROR(
          cudaDeviceGetP2PAttribute(&atomics, cudaDevP2PAttrNativeAtomicSupported, ordinals[i], ordinals[j]));
      if (!atomics)
        return unavailable("GPUs " + std::to_string(ordinals[i]) + " and " + std::to_string(ordinals[j]) +
                           " have no NVLink between them (peer reads would cross PCIe)");
    }
  auto group = std::make_shared<PeerGroup>(ordinals);
  int previous = -1;
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaGetDevice(&previous));
  Status made;
  for (int i = 0; i < n && made.ok(); ++i) {
    made = cuda::cuda_status(cudaSetDevice(ordinals[i]), "cudaSetDevice");
    for (int j = 0; j < n && made.ok(); ++j) {
      if (i == j) continue;
      const cudaError_t err = cudaDeviceEnablePeerAccess(ordinals[j], 0);
      if (err == cudaErrorPeerAccessAlreadyEnabled)
        (void)cudaGetLastError();  // another group of this process enabled it: fine
      else
        made = cuda::cuda_status(err, "cudaDeviceEnablePeerAccess");
    }
    const size_t flag_bytes = sizeof(uint32_t) * kPeerFlagWords;
    if (made.ok())
      made = cuda::cuda_status(cudaMalloc(reinterpret_cast<void**>(&group->flags[static_cast<size_t>(i)]), flag_bytes),
                               "cudaMalloc (peer flags)");
    // Zero before any sum: the sums' streams do not wait for the legacy default stream, so synchronise.
    if (made.ok()) made = cuda::cuda_status(cudaMemset(group->flags[static_cast<size_t>(i)], 0, flag_bytes), "cudaMemset");
    if (made.ok()) made = cuda::cuda_status(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }
  if (made.ok())
    made = cuda::cuda_status(cudaHostAlloc(reinterpret_cast<void**>(&group->abort_host), sizeof(int),
                                           cudaHostAllocMapped | cudaHostAllocPortable),
                             "cudaHostAlloc (abort flag)");
  if (made.ok()) {
    *group->abort_host = 0;
    void* device = nullptr;
    made = cuda::cuda_status(cudaHostGetDevicePointer(&device, group->abort_host, 0), "cudaHostGetDevicePointer");
    group->abort_device = static_cast<const int*>(device);
  }
  cudaSetDevice(previous);
  EMBEDSERVE_RETURN_IF_ERROR(made);
  std::vector<std::unique_ptr<PeerRank>> ranks;
  for (int r = 0; r < n; ++r) ranks.push_back(std::make_unique<PeerRank>(group, r));
  return ranks;
}

}  // namespace embedserve::ops::cuda_backend
