// linear: checks, then on the CPU our bf16-weight kernels or OpenBLAS sgemm (per sequence where its kernels are
// not row-independent), or cuBLAS.
#include "ops/linear.h"

#include "ops/check.h"
#include "ops/cpu/cpu_state.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/linear_cuda.h"
#endif

namespace embedserve::ops {

Status linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor& y, const Index& row_groups) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("linear", "w", w, w.rows, x.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("linear", "y", y, x.rows, w.rows));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("linear", {{"x", &x}, {"w", &w}, {"y", &y}}));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("linear", ctx, {{"x", &x}}));
  // y is in the context's dtype, or f32 on a bf16 context: a tensor-parallel rank's partial product, kept unrounded
  // for the all-reduce (ops/all_reduce.h).
  const bool f32_partial = y.dtype == DType::kF32 && ctx.dtype() == DType::kBF16;
  if (y.dtype != ctx.dtype() && !f32_partial)
    return internal_error(std::string("linear: y is ") + dtype_name(y.dtype) + " on a " + dtype_name(ctx.dtype()) +
                          " context");
  if (w.dtype != ctx.weight_dtype())
    return internal_error(std::string("linear: w is ") + dtype_name(w.dtype) + " on a context whose weights are " +
                          dtype_name(ctx.weight_dtype()));
  if (row_groups.host.empty() || row_groups.host.front() != 0 || row_groups.host.back() != x.rows)
    return internal_error("linear: row_groups must split the " + std::to_string(x.rows) + " rows");
  if (ctx.device() == Device::kCpu && w.dtype == DType::kBF16) {
    // Rows independent by construction (cpu/gemm_bf16.h): one call for the whole batch.
    cpu::linear_bf16(cpu::bf16_kernel(ctx), x.as<const float>(), w.as<const uint16_t>(), y.as<float>(), x.rows, w.rows,
                     x.cols);
    return Status();
  }
  if (ctx.device() == Device::kCpu) {
    cpu::linear(x.as<const float>(), w.as<const float>(), y.as<float>(), x.rows, w.rows, x.cols, row_groups.host);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  const auto& st = cuda_backend::state(ctx);
  if (x.dtype == DType::kF32) {
    // cuBLAS's SGEMM picks its kernel by m, and the kernels round a row differently (measured: batches of 28+
    // rows differ from a row alone by up to 22 ulp), so the f32 parity mode runs one GEMM per sequence: a
    // sequence's bits then never depend on its batch. bf16 GEMMs without a workspace need no split (measured
    // bitwise at the real shapes), and carry the speed.
    const std::span<const int32_t> g = row_groups.host;
    for (size_t i = 0; i + 1 < g.size(); ++i) {
      if (g[i + 1] == g[i]) continue;
      EMBEDSERVE_RETURN_IF_ERROR(cuda::linear(st.blas, st.handle, x.as<const float>() + int64_t{g[i]} * x.cols,
                                              w.as<const float>(), y.as<float>() + int64_t{g[i]} * y.cols,
                                              g[i + 1] - g[i], w.rows, x.cols));
    }
    return Status();
  }
  if (f32_partial)
    return cuda::linear(st.blas, st.handle, x.as<const __nv_bfloat16>(), w.as<const __nv_bfloat16>(), y.as<float>(),
                        x.rows, w.rows, x.cols);
  return cuda_backend::by_dtype(x.dtype, "linear", [&](auto tag) {
    using T = decltype(tag);
    return cuda::linear(st.blas, st.handle, x.as<const T>(), w.as<const T>(), y.as<T>(), x.rows, w.rows, x.cols);
  });
#else
  return no_backend("linear");
#endif
}

}  // namespace embedserve::ops
