// embedding: checks, then the CPU kernel (widening a mapped table) or the CUDA gather.
#include "ops/embedding.h"

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/embedding_cuda.h"
#endif

namespace embedserve::ops {

Status embedding(const DeviceContext& ctx, const Tensor& table, const Index& ids, const Tensor& out) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("embedding", "out", out, ids.size(), table.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("embedding", "out", out));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense("embedding", "table", table));
  EMBEDSERVE_RETURN_IF_ERROR(expect_index("embedding", "ids", ids, out.rows));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("embedding", ctx, {{"out", &out}}));
  if (ctx.device() == Device::kCpu) {
    cpu::embedding(table.data, table.dtype, table.cols, ids.host, out.as<float>());
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (table.dtype != out.dtype) return internal_error("embedding: the CUDA table must be in the context's dtype");
  return cuda_backend::by_dtype(out.dtype, "embedding", [&](auto tag) {
    using T = decltype(tag);
    return cuda::embedding(table.as<const T>(), table.cols, ids.device, out.rows, out.as<T>(), cuda_backend::stream(ctx));
  });
#else
  return no_backend("embedding");
#endif
}

}  // namespace embedserve::ops
