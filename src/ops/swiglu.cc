// swiglu: checks, then the backend's SiLU·mul over the two halves of the fused gate|up output.
#include "ops/swiglu.h"

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#include "ops/linear.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/elementwise_cuda.h"
#endif

namespace embedserve::ops {

Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out, const Tensor* quantized,
              bool keep_out) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("swiglu", "gate_up", gate_up, out.rows, 2 * out.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("swiglu", "out", out));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("swiglu", ctx, {{"gate_up", &gate_up}, {"out", &out}}));
  if (quantized && (ctx.weight_dtype() != DType::kF8E4M3 ||
                    quantized->bytes() < linear_scratch_bytes(ctx, out.rows, out.cols)))
    return internal_error("swiglu: `quantized` needs an fp8 context and a linear scratch of the rows' size");
  const Tensor gate = gate_up.columns(0, out.cols), up = gate_up.columns(out.cols, out.cols);
  if (ctx.device() == Device::kCpu) {
    cpu::silu_mul(gate.as<const float>(), up.as<const float>(), gate_up.stride, out.as<float>(), out.rows, out.cols);
    return quantized ? quantize_for_linear(ctx, out, *quantized) : Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  auto* q = quantized ? static_cast<uint8_t*>(quantized->data) : nullptr;
  auto* q_scales = q ? reinterpret_cast<float*>(q + linear_scratch_scales_offset(out.rows, out.cols)) : nullptr;
  return cuda_backend::by_dtype(out.dtype, "swiglu", [&](auto tag) {
    using T = decltype(tag);
    return cuda::silu_mul(gate.as<const T>(), up.as<const T>(), gate_up.stride, out.as<T>(), out.rows, out.cols,
                          cuda_backend::stream(ctx), q, q_scales, keep_out);
  });
#else
  return no_backend("swiglu");
#endif
}

}  // namespace embedserve::ops
