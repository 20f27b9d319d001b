// gather_rows: checks, then the backend's row copy.
#include "ops/gather_rows.h"

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/elementwise_cuda.h"
#endif

namespace embedserve::ops {

Status gather_rows(const DeviceContext& ctx, const Tensor& x, const Index& rows, const Tensor& out) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("gather_rows", "out", out, rows.size(), x.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("gather_rows", "x", x));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("gather_rows", "out", out));
  EMBEDSERVE_RETURN_IF_ERROR(expect_index("gather_rows", "rows", rows, out.rows));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("gather_rows", ctx, {{"x", &x}, {"out", &out}}));
  for (int32_t r : rows.host)
    if (r < 0 || r >= x.rows) return internal_error("gather_rows: row " + std::to_string(r) + " is outside x");
  const char* xb = static_cast<const char*>(x.data);
  const char* ob = static_cast<const char*>(out.data);
  if (ob < xb + x.bytes() && xb < ob + out.bytes()) return internal_error("gather_rows: out overlaps x");
  if (ctx.device() == Device::kCpu) {
    cpu::gather_rows(x.as<const float>(), x.cols, rows.host, out.as<float>());
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::by_dtype(x.dtype, "gather_rows", [&](auto tag) {
    using T = decltype(tag);
    return cuda::gather_rows(x.as<const T>(), x.cols, rows.device, out.rows, out.as<T>(), cuda_backend::stream(ctx));
  });
#else
  return no_backend("gather_rows");
#endif
}

}  // namespace embedserve::ops
