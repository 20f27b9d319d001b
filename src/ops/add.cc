// add: checks, then the backend's element-wise kernel.
#include "ops/add.h"

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/elementwise_cuda.h"
#endif

namespace embedserve::ops {

Status add(const DeviceContext& ctx, const Tensor& x, const Tensor& y) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("add", "y", y, x.rows, x.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("add", "x", x));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("add", "y", y));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("add", ctx, {{"x", &x}, {"y", &y}}));
  if (ctx.device() == Device::kCpu) {
    cpu::add(x.as<float>(), y.as<const float>(), x.numel());
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::by_dtype(x.dtype, "add", [&](auto tag) {
    using T = decltype(tag);
    return cuda::add(x.as<T>(), y.as<const T>(), x.numel(), cuda_backend::stream(ctx));
  });
#else
  return no_backend("add");
#endif
}

}  // namespace embedserve::ops
