// swiglu: checks, then the backend's SiLU·mul over the two halves of the fused gate|up output.
#include "ops/swiglu.h"

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/elementwise_cuda.h"
#endif

namespace embedserve::ops {

Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("swiglu", "gate_up", gate_up, out.rows, 2 * out.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("swiglu", "out", out));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("swiglu", ctx, {{"gate_up", &gate_up}, {"out", &out}}));
  const Tensor gate = gate_up.columns(0, out.cols), up = gate_up.columns(out.cols, out.cols);
  if (ctx.device() == Device::kCpu) {
    cpu::silu_mul(gate.as<const float>(), up.as<const float>(), gate_up.stride, out.as<float>(), out.rows, out.cols);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::by_dtype(out.dtype, "swiglu", [&](auto tag) {
    using T = decltype(tag);
    return cuda::silu_mul(gate.as<const T>(), up.as<const T>(), gate_up.stride, out.as<T>(), out.rows, out.cols,
                          cuda_backend::stream(ctx));
  });
#else
  return no_backend("swiglu");
#endif
}

}  // namespace embedserve::ops
