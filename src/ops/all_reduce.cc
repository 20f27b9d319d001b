// all_reduce: checks, then the group's backend (rank threads' shared buffers on the CPU, NCCL on CUDA).
#include "ops/all_reduce.h"

#include <algorithm>

#include "ops/check.h"
#include "ops/cpu/thread_group.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/nccl_communicator.h"
#endif

namespace embedserve::ops {

Status all_reduce(const DeviceContext& ctx, const Tensor& partial, const Tensor& sum) {
  const char* op = "all_reduce";
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "sum", sum, partial.rows, partial.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense(op, {{"partial", &partial}, {"sum", &sum}}));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype(op, ctx, {{"sum", &sum}}));
  if (partial.dtype != DType::kF32 && partial.dtype != ctx.dtype())
    return internal_error(std::string("all_reduce: partial is ") + dtype_name(partial.dtype) + " on a " +
                          dtype_name(ctx.dtype()) + " context (f32 or the context's dtype)");
  if (partial.dtype != sum.dtype && partial.data == sum.data)
    return internal_error("all_reduce: sum aliases partial but their dtypes differ");
  Communicator* comm = ctx.communicator();
  const size_t count = static_cast<size_t>(partial.numel());
  if (ctx.device() == Device::kCpu) {  // CPU contexts compute in f32: partial and sum are both f32
    if (comm && comm->size() > 1) {
      auto* group = dynamic_cast<cpu::ThreadGroupCommunicator*>(comm);
      if (!group) return internal_error("all_reduce: a CPU context holds a communicator of another backend");
      EMBEDSERVE_RETURN_IF_ERROR(group->all_reduce(partial.as<float>(), count));
    }
    if (sum.data != partial.data) std::copy_n(partial.as<const float>(), count, sum.as<float>());
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  const cudaStream_t stream = cuda_backend::stream(ctx);
  if (comm && comm->size() > 1) {
    auto* nccl = dynamic_cast<cuda_backend::NcclCommunicator*>(comm);
    if (!nccl) return internal_error("all_reduce: a CUDA context holds a communicator of another backend");
    EMBEDSERVE_RETURN_IF_ERROR(
        nccl->all_reduce(partial.data, count, partial.dtype == DType::kF32 ? ncclFloat32 : ncclBfloat16, stream));
  }
  if (sum.data == partial.data) return Status();
  if (partial.dtype != DType::kF32)
    return internal_error("all_reduce: a sum apart from its partial needs an f32 partial");
  return cuda_backend::by_dtype(sum.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    return cuda_backend::round_sum<T>(partial.as<const float>(), sum.as<T>(), partial.numel(), stream);
  });
#else
  return no_backend(op);
#endif
}

}  // namespace embedserve::ops
