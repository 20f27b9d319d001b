// NcclCommunicator: NCCL's communicators for a group of GPUs in one process, and its in-place all-reduce.
#include "ops/cuda/nccl_communicator.h"

#include <cstdlib>
#include <string>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_context.h"

namespace embedserve::ops::cuda_backend {

NcclCommunicator::~NcclCommunicator() {
  if (aborted_.load()) return;  // ncclCommAbort already freed it
  // ncclCommAbort, not ncclCommDestroy: destroy finalizes first, which waits until every rank of the group is
  // quiescent, so destroying a group's communicators one after another from one thread could wait for ever.
  // Nothing runs on the communicator by now (its rank's engine is gone), so aborting frees the same resources,
  // locally, without waiting.
  int previous = -1;
  if (set_device(ordinal_, &previous).ok()) {
    api_->comm_abort(comm_);
    if (stream_) cudaStreamSynchronize(stream_);
    for (size_t i = 0; i < kInFlight; ++i) {
      if (reached_[i]) cudaEventDestroy(reached_[i]);
      if (summed_[i]) cudaEventDestroy(summed_[i]);
    }
    if (stream_) cudaStreamDestroy(stream_);
    cudaSetDevice(previous);
  }
}

Status NcclCommunicator::create_stream() {
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  for (size_t i = 0; i < kInFlight; ++i) {
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&reached_[i], cudaEventDisableTiming));
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&summed_[i], cudaEventDisableTiming));
  }
  return Status();
}

void NcclCommunicator::abort() {
  // Ends the communicator's kernels that wait for a peer that will not come, so the rank's stream drains.
  if (!aborted_.exchange(true)) api_->comm_abort(comm_);
  if (peer_) peer_->abort();  // and the peer sums' waits
}

std::string NcclCommunicator::description() const {
  const std::string nccl = "NCCL " + api_->version + " (" + api_->path + ")";
  if (peer_) return nccl + ", sums by peer reads over the GPUs' links";
  return why_no_peer_reads_.empty() ? nccl : nccl + ", sums by NCCL: " + why_no_peer_reads_;
}

Status NcclCommunicator::all_reduce(void* data, size_t count, ncclDataType_t type, cudaStream_t stream) {
  if (aborted_.load()) return unavailable("the tensor-parallel group was aborted: another rank failed");
  return cuda::nccl_status(*api_, api_->all_reduce(data, data, count, type, ncclSum, comm_, stream), "ncclAllReduce");
}

StatusOr<uint64_t> NcclCommunicator::start_all_reduce(void* data, size_t count, ncclDataType_t type,
                                                      cudaStream_t compute,
                                                      const std::function<Status(cudaStream_t)>& then) {
  if (aborted_.load()) return unavailable("the tensor-parallel group was aborted: another rank failed");
  if (!stream_) return internal_error("start_all_reduce: the communicator has no stream");
  const size_t slot = started_ % kInFlight;
  if (in_flight_[slot])
    return internal_error("start_all_reduce: more than " + std::to_string(kInFlight) + " sums in flight");
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaEventRecord(reached_[slot], compute));
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream_, reached_[slot], 0));
  EMBEDSERVE_RETURN_IF_ERROR(
      cuda::nccl_status(*api_, api_->all_reduce(data, data, count, type, ncclSum, comm_, stream_), "ncclAllReduce"));
  if (then) EMBEDSERVE_RETURN_IF_ERROR(then(stream_));
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaEventRecord(summed_[slot], stream_));
  in_flight_[slot] = true;
  return started_++;
}

Status NcclCommunicator::join(uint64_t ticket, cudaStream_t compute) {
  const size_t slot = ticket % kInFlight;
  if (ticket >= started_ || ticket + kInFlight < started_ || !in_flight_[slot])
    return internal_error("join: no such sum in flight");
  in_flight_[slot] = false;  // even if the wait fails to enqueue: the caller fails its batch either way
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(compute, summed_[slot], 0));
  return Status();
}

StatusOr<std::vector<std::shared_ptr<Communicator>>> create_nccl_group(const std::vector<int>& ordinals,
                                                                     const std::string& nccl_path, bool peer_reads) {
  // NVLink multicast (NVLS) must stay off on the machines we serve from: NCCL would otherwise create multicast
  // objects (cuMulticastCreate) for a group on NVSwitch systems. Forced, whatever the environment says: NCCL reads
  // its variables itself at its first initialisation, so this is the one place they can be set. Once per process,
  // before the first group (several --dp replicas may make theirs at once; setenv must not race NCCL's getenv).
  static const bool nvls_off = setenv("NCCL_NVLS_ENABLE", "0", 1) == 0;
  if (!nvls_off) return internal_error("could not set NCCL_NVLS_ENABLE=0 before starting NCCL");
  EMBEDSERVE_ASSIGN_OR_RETURN(cuda::NcclApi loaded, cuda::open_nccl(nccl_path));
  auto api = std::make_shared<const cuda::NcclApi>(std::move(loaded));
  std::vector<ncclComm_t> comms(ordinals.size(), nullptr);
  int previous = -1;
  EMBEDSERVE_RETURN_IF_ERROR(set_device(ordinals.front(), &previous));
  const ncclResult_t made = api->comm_init_all(comms.data(), static_cast<int>(ordinals.size()), ordinals.data());
  cudaSetDevice(previous);
  EMBEDSERVE_RETURN_IF_ERROR(cuda::nccl_status(*api, made, "ncclCommInitAll"));
  std::vector<std::shared_ptr<Communicator>> ranks;
  for (size_t r = 0; r < ordinals.size(); ++r) {
    auto rank = std::make_shared<NcclCommunicator>(api, comms[r], static_cast<int>(r),
                                                   static_cast<int>(ordinals.size()), ordinals[r]);
    ranks.push_back(rank);  // owns comms[r] from here, whatever follows
    EMBEDSERVE_RETURN_IF_ERROR(set_device(ordinals[r], &previous));
    const Status made_stream = rank->create_stream();
    cudaSetDevice(previous);
    EMBEDSERVE_RETURN_IF_ERROR(made_stream);
  }
  if (!peer_reads) return ranks;
  // Sums by peer reads where the GPUs allow them; NCCL's all-reduce otherwise (the start-up line says which).
  auto peers = create_peer_group(ordinals);
  for (size_t r = 0; r < ranks.size(); ++r)
    static_cast<NcclCommunicator&>(*ranks[r]).use_peer_reads(peers.ok() ? std::move(peers.value()[r]) : nullptr,
                                                             peers.ok() ? "" : peers.status().message());
  return ranks;
}

}  // namespace embedserve::ops::cuda_backend
