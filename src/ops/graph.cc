// run_recorded: the CPU runs the body; CUDA records it into its context's graph cache (ops/cuda/cuda_graph.cc).
#include "ops/graph.h"

#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_graph.h"
#endif

namespace embedserve::ops {

Status run_recorded(const DeviceContext& ctx, uint64_t key, const std::function<Status()>& body, bool record_now) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() == Device::kCuda) return cuda_backend::run_recorded(ctx, key, body, record_now);
#else
  (void)record_now;
#endif
  return body();
}

size_t recorded_graphs(const DeviceContext& ctx) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() == Device::kCuda) return cuda_backend::recorded_graphs(ctx);
#endif
  (void)ctx;
  return 0;
}

}  // namespace embedserve::ops
