// rms_norm and add_rms_norm: checks, then the backend's kernels (the fusion is a composition on both today).
#include "ops/rms_norm.h"

#include "ops/add.h"
#include "ops/check.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/rms_norm_cuda.h"
#endif

namespace embedserve::ops {

Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("rms_norm", "out", out, x.rows, x.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("rms_norm", "weight", weight, 1, x.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("rms_norm", ctx, {&x, &weight, &out}));
  if (x.stride != out.stride) return internal_error("rms_norm: x and out must share a row stride");
  if (ctx.device() == Device::kCpu) {
    cpu::rms_norm(x.as<const float>(), weight.as<const float>(), out.as<float>(), x.rows, x.cols, x.stride, eps);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("rms_norm", "x", x));
  return cuda_backend::by_dtype(x.dtype, "rms_norm", [&](auto tag) {
    using T = decltype(tag);
    return cuda::rms_norm(x.as<const T>(), weight.as<const T>(), out.as<T>(), x.rows, x.cols, eps,
                          cuda_backend::stream(ctx));
  });
#else
  return no_backend("rms_norm");
#endif
}

Status add_rms_norm(const DeviceContext& ctx, const Tensor& residual, const Tensor& delta, const Tensor& weight,
                    float eps, const Tensor& out) {
  EMBEDSERVE_RETURN_IF_ERROR(add(ctx, residual, delta));
  return rms_norm(ctx, residual, weight, eps, out);
}

}  // namespace embedserve::ops
