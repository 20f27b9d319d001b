// pool: checks, then the backend's pooling and L2 normalisation.
#include "ops/pool.h"

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/pooling_cuda.h"
#endif

namespace embedserve::ops {

Status pool(const DeviceContext& ctx, const Tensor& hidden, const Index& offsets, bool normalize, const Tensor& out) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("pool", "out", out, offsets.size() - 1, hidden.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("pool", "hidden", hidden));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("pool", "out", out));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("pool", ctx, {{"hidden", &hidden}}));
  EMBEDSERVE_RETURN_IF_ERROR(expect_index("pool", "offsets", offsets, out.rows + 1));
  if (out.dtype != DType::kF32) return internal_error("pool: out must be f32");
  if (offsets.host.back() > hidden.rows) return internal_error("pool: offsets run past the hidden rows");
  if (ctx.device() == Device::kCpu) {
    cpu::pool(hidden.as<const float>(), hidden.cols, offsets.host, normalize, out.as<float>());
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::by_dtype(hidden.dtype, "pool", [&](auto tag) {
    using T = decltype(tag);
    return cuda::pool_normalize(hidden.as<const T>(), hidden.cols, offsets.device, out.rows, normalize, out.as<float>(),
                                cuda_backend::stream(ctx));
  });
#else
  return no_backend("pool");
#endif
}

}  // namespace embedserve::ops
