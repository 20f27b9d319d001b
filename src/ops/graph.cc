// run_recorded: the CPU runs the body; CUDA records it into its context's graph cache (ops/cuda/cuda_graph.cc).
#include "ops/graph.h"

#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_graph.h"
#endif

namespace embedserve::ops {

Status run_recorded(const DeviceContext& ctx, uint64_t key, const std::function<Status()>& body) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() == Device::kCuda) return cuda_backend::run_recorded(ctx, key, body);
#endif
  return body();
}

}  // namespace embedserve::ops
