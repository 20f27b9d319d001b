// rms_norm and add_rms_norm: checks, then the backend's kernels (the fusion is a composition on both today).
#include "ops/rms_norm.h"

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#include "ops/linear.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/rms_norm_cuda.h"
#endif

namespace embedserve::ops {

Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("rms_norm", "out", out, x.rows, x.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("rms_norm", "weight", weight, 1, x.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("rms_norm", ctx, {{"x", &x}, {"weight", &weight}, {"out", &out}}));
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
                    float eps, const Tensor& out, const Tensor* quantized) {
  // Every operand is checked before the residual changes: a bad call leaves it as it was on every backend.
  const char* op = "add_rms_norm";
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "delta", delta, residual.rows, residual.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "out", out, residual.rows, residual.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "weight", weight, 1, residual.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense(op, {{"residual", &residual}, {"delta", &delta}, {"out", &out}}));
  EMBEDSERVE_RETURN_IF_ERROR(
      expect_dtype(op, ctx, {{"residual", &residual}, {"delta", &delta}, {"weight", &weight}, {"out", &out}}));
  if (quantized && (ctx.weight_dtype() != DType::kF8E4M3 ||
                    quantized->bytes() < linear_scratch_bytes(ctx, out.rows, out.cols)))
    return internal_error("add_rms_norm: `quantized` needs an fp8 context and a linear scratch of the rows' size");
  if (ctx.device() == Device::kCpu) {  // by composition: the CPU's passes are memory-light next to its GEMMs
    cpu::add(residual.as<float>(), delta.as<const float>(), residual.numel());
    cpu::rms_norm(residual.as<const float>(), weight.as<const float>(), out.as<float>(), residual.rows, residual.cols,
                  residual.stride, eps);
    return quantized ? quantize_for_linear(ctx, out, *quantized) : Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  auto* q = quantized ? static_cast<uint8_t*>(quantized->data) : nullptr;
  auto* q_scales = q ? reinterpret_cast<float*>(q + linear_scratch_scales_offset(out.rows, out.cols)) : nullptr;
  return cuda_backend::by_dtype(residual.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    return cuda::add_rms_norm(residual.as<T>(), delta.as<const T>(), weight.as<const T>(), out.as<T>(), residual.rows,
                              residual.cols, eps, cuda_backend::stream(ctx), q, q_scales);
  });
#else
  return no_backend(op);
#endif
}

}  // namespace embedserve::ops
