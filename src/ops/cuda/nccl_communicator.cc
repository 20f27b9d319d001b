// NcclCommunicator: NCCL's communicators for a group of GPUs in one process, and its in-place all-reduce.
#include "ops/cuda/nccl_communicator.h"

#include <cstdlib>
#include <string>

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
    cudaSetDevice(previous);
  }
}

void NcclCommunicator::abort() {
  // Ends the communicator's kernels that wait for a peer that will not come, so the rank's stream drains.
  if (!aborted_.exchange(true)) api_->comm_abort(comm_);
}

std::string NcclCommunicator::description() const {
  return "NCCL " + api_->version + " (" + api_->path + ")";
}

Status NcclCommunicator::all_reduce(void* data, size_t count, ncclDataType_t type, cudaStream_t stream) {
  if (aborted_.load()) return unavailable("the tensor-parallel group was aborted: another rank failed");
  return cuda::nccl_status(*api_, api_->all_reduce(data, data, count, type, ncclSum, comm_, stream), "ncclAllReduce");
}

StatusOr<std::vector<std::shared_ptr<Communicator>>> create_nccl_group(const std::vector<int>& ordinals,
                                                                     const std::string& nccl_path) {
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
  for (size_t r = 0; r < ordinals.size(); ++r)
    ranks.push_back(std::make_shared<NcclCommunicator>(api, comms[r], static_cast<int>(r),
                                                       static_cast<int>(ordinals.size()), ordinals[r]));
  return ranks;
}

}  // namespace embedserve::ops::cuda_backend
