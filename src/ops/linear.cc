// linear: checks, then on the CPU our bf16/fp8 kernels or OpenBLAS sgemm (per sequence where not row-independent);
// on CUDA cuBLAS: bf16 on the fastest split-K-free kernel per shape (cuda/tuned_gemm.h), fp8 through cuBLASLt.
#include "ops/linear.h"

#include "ops/check.h"
#include "ops/cpu/cpu_state.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/fp8_cuda.h"
#include "ops/cuda/linear_cuda.h"
#endif

namespace embedserve::ops {
namespace {

Status check_scratch(const DeviceContext& ctx, const Tensor& x, const Tensor& scratch, const char* op) {
  const size_t need = linear_scratch_bytes(ctx, x.rows, x.cols);
  if (!scratch.data || scratch.bytes() < need)
    return internal_error(std::string(op) + ": fp8 GEMM inputs need " + std::to_string(need) +
                          " bytes of scratch, got " + std::to_string(scratch.data ? scratch.bytes() : 0));
  return Status();
}

Status linear_fp8(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor& y, const Tensor& scratch,
                  bool x_quantized) {
  if (!w.scales) return internal_error("linear: fp8 weight w has no scales");
  EMBEDSERVE_RETURN_IF_ERROR(check_scratch(ctx, x, scratch, "linear"));
  if (!x_quantized) EMBEDSERVE_RETURN_IF_ERROR(quantize_for_linear(ctx, x, scratch));
  const auto* xq = static_cast<const uint8_t*>(scratch.data);
  const auto* x_scales = reinterpret_cast<const float*>(xq + linear_scratch_scales_offset(x.rows, x.cols));
  if (ctx.device() == Device::kCpu) {
    cpu::linear_fp8(xq, x_scales, w.as<const uint8_t>(), w.scales, y.as<float>(), x.rows, w.rows, x.cols);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  const auto& st = cuda_backend::state(ctx);
  if (x.dtype != DType::kBF16 || !st.fp8) return internal_error("linear: fp8 weights on CUDA need a bf16 fp8 context");
  return st.fp8->run(st.stream, xq, x_scales, w.as<const uint8_t>(), w.scales, y.as<__nv_bfloat16>(), x.rows, w.rows,
                     x.cols);
#else
  return no_backend("linear");
#endif
}

}  // namespace

size_t linear_scratch_scales_offset(int64_t rows, int64_t k) {
  return (static_cast<size_t>(rows * k) + 15) & ~size_t{15};  // 16-byte aligned, as cuBLASLt wants its operands
}

Status quantize_for_linear(const DeviceContext& ctx, const Tensor& x, const Tensor& scratch) {
  if (ctx.weight_dtype() != DType::kF8E4M3) return internal_error("quantize_for_linear: the context has no fp8 weights");
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("quantize_for_linear", "x", x));
  EMBEDSERVE_RETURN_IF_ERROR(check_scratch(ctx, x, scratch, "quantize_for_linear"));
  auto* xq = static_cast<uint8_t*>(scratch.data);
  auto* x_scales = reinterpret_cast<float*>(xq + linear_scratch_scales_offset(x.rows, x.cols));
  if (ctx.device() == Device::kCpu) {
    cpu::quantize_rows_e4m3(x.as<const float>(), x.rows, x.cols, xq, x_scales);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (x.dtype != DType::kBF16) return internal_error("quantize_for_linear: CUDA quantises bf16 rows");
  return cuda::quantize_rows_e4m3(x.as<const __nv_bfloat16>(), x.rows, x.cols, xq, x_scales, cuda_backend::stream(ctx));
#else
  return no_backend("quantize_for_linear");
#endif
}

Status check_linear_shape(const DeviceContext& ctx, int64_t n, int64_t k, const std::string& name) {
  if (ctx.device() == Device::kCuda && ctx.weight_dtype() == DType::kF8E4M3 && (n % 16 != 0 || k % 16 != 0))
    return unimplemented("--quantization fp8 on CUDA needs projections whose sizes are multiples of 16 (cuBLASLt's "
                         "FP8 GEMMs); " + name + " is [" + std::to_string(n) + ", " + std::to_string(k) +
                         "]; run this model without --quantization fp8, or on the CPU");
  return Status();
}

size_t linear_scratch_bytes(const DeviceContext& ctx, int64_t rows, int64_t max_k) {
  if (ctx.weight_dtype() != DType::kF8E4M3) return 0;
  return linear_scratch_scales_offset(rows, max_k) + static_cast<size_t>(rows) * sizeof(float);
}

Status linear(const DeviceContext& ctx, const Tensor& x, const Tensor& w, const Tensor& y, const Index& row_groups,
              const Tensor& scratch, bool x_quantized) {
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
  if (w.dtype == DType::kF8E4M3) {
    if (f32_partial) return internal_error("linear: fp8 weights write y in the context's dtype, not f32 partials");
    return linear_fp8(ctx, x, w, y, scratch, x_quantized);
  }
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
  // bf16: the tuned GEMMs where the context has them (ops/cuda/tuned_gemm.h: the same bits as cublasGemmEx).
  if (x.dtype == DType::kBF16 && !f32_partial && st.tuned_gemm)
    return st.tuned_gemm->run(st.stream, x.as<const __nv_bfloat16>(), w.as<const __nv_bfloat16>(),
                              y.as<__nv_bfloat16>(), x.rows, w.rows, x.cols);
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

bool linear_chooses_kernel(const DeviceContext& ctx, const Tensor& w, int64_t rows) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  return ctx.device() == Device::kCuda && ctx.dtype() == DType::kBF16 && w.dtype == DType::kBF16 &&
         cuda_backend::state(ctx).tuned_gemm && cuda::TunedGemm::tuned(rows, w.rows, w.cols);
#else
  (void)ctx;
  (void)w;
  (void)rows;
  return false;
#endif
}

size_t linear_kernel_choices(const DeviceContext& ctx) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() != Device::kCuda || !cuda_backend::state(ctx).tuned_gemm) return 0;
  return cuda_backend::state(ctx).tuned_gemm->choices();
#else
  (void)ctx;
  return 0;
#endif
}

}  // namespace embedserve::ops
