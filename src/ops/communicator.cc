// create_group: the tensor-parallel group of the device asked for (rank threads on the CPU, NCCL on CUDA).
#include "ops/communicator.h"

#include "ops/cpu/thread_group.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/nccl_communicator.h"
#endif

namespace embedserve::ops {

StatusOr<std::vector<std::shared_ptr<Communicator>>> create_group(const GroupOptions& options) {
  if (options.ranks < 1) return invalid_argument("a tensor-parallel group needs at least one rank");
  if (options.device == Device::kCpu) return cpu::create_thread_group(options.ranks);
  if (options.ordinals.size() != static_cast<size_t>(options.ranks))
    return internal_error("create_group: " + std::to_string(options.ranks) + " ranks but " +
                          std::to_string(options.ordinals.size()) + " GPUs");
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::create_nccl_group(options.ordinals, options.nccl_path, options.peer_reads);
#else
  return unimplemented("this embedserve was built without the CUDA backend (EMBEDSERVE_CUDA=OFF); use --device cpu");
#endif
}

}  // namespace embedserve::ops
