// all_reduce: checks, then the group's backend (rank threads' shared buffers on the CPU, NCCL on CUDA), at once or
// started on the communicator's stream and finished later.
#include "ops/all_reduce.h"

#include <algorithm>

#include "ops/check.h"
#include "ops/cpu/thread_group.h"
#include "ops/rms_norm.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/nccl_communicator.h"
#endif

namespace embedserve::ops {

namespace {

Status check_sum(const DeviceContext& ctx, const Tensor& partial, const Tensor& sum) {
  const char* op = "all_reduce";
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "sum", sum, partial.rows, partial.cols));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense(op, {{"partial", &partial}, {"sum", &sum}}));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype(op, ctx, {{"sum", &sum}}));
  if (partial.dtype != DType::kF32 && partial.dtype != ctx.dtype())
    return internal_error(std::string("all_reduce: partial is ") + dtype_name(partial.dtype) + " on a " +
                          dtype_name(ctx.dtype()) + " context (f32 or the context's dtype)");
  if (partial.dtype != sum.dtype && partial.data == sum.data)
    return internal_error("all_reduce: sum aliases partial but their dtypes differ");
  if (sum.data != partial.data && partial.dtype != DType::kF32 && !reads_peers(ctx))
    return internal_error("all_reduce: a sum apart from its partial needs an f32 partial");
  if (sum.data == partial.data && reads_peers(ctx))
    return internal_error("all_reduce: summing by peer reads needs the sum apart from the partial");
  return Status();
}

#if defined(EMBEDSERVE_HAVE_CUDA)
// sum (the context's dtype) = partial (f32, already summed), on `stream`; nothing where sum is partial.
Status round_into_sum(const Tensor& partial, const Tensor& sum, cudaStream_t stream) {
  if (sum.data == partial.data) return Status();
  return cuda_backend::by_dtype(sum.dtype, "all_reduce", [&](auto tag) {
    using T = decltype(tag);
    return cuda_backend::round_sum<T>(partial.as<const float>(), sum.as<T>(), partial.numel(), stream);
  });
}

StatusOr<cuda_backend::NcclCommunicator*> nccl_of(const DeviceContext& ctx) {
  auto* nccl = dynamic_cast<cuda_backend::NcclCommunicator*>(ctx.communicator());
  if (!nccl) return internal_error("all_reduce: a CUDA context holds a communicator of another backend");
  return nccl;
}
#endif

}  // namespace

Status all_reduce(const DeviceContext& ctx, const Tensor& partial, const Tensor& sum) {
  EMBEDSERVE_RETURN_IF_ERROR(check_sum(ctx, partial, sum));
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
    EMBEDSERVE_ASSIGN_OR_RETURN(cuda_backend::NcclCommunicator * nccl, nccl_of(ctx));
    if (nccl->peer())
      return nccl->peer()->sum(partial.data, partial.dtype == DType::kF32, sum.data, sum.dtype == DType::kF32,
                               partial.numel(), stream);
    EMBEDSERVE_RETURN_IF_ERROR(
        nccl->all_reduce(partial.data, count, partial.dtype == DType::kF32 ? ncclFloat32 : ncclBfloat16, stream));
  }
  return round_into_sum(partial, sum, stream);
#else
  return no_backend("all_reduce");
#endif
}

Status all_reduce_add_rms_norm(const DeviceContext& ctx, const Tensor& partial, const Tensor& residual,
                               const Tensor& weight, float eps, const Tensor& out, const Tensor* quantized) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (reads_peers(ctx) && !quantized) {
    const char* op = "all_reduce_add_rms_norm";
    EMBEDSERVE_RETURN_IF_ERROR(check_sum(ctx, partial, out));
    EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "residual", residual, partial.rows, partial.cols));
    EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "weight", weight, 1, partial.cols));
    EMBEDSERVE_RETURN_IF_ERROR(expect_dense(op, {{"residual", &residual}, {"weight", &weight}}));
    EMBEDSERVE_RETURN_IF_ERROR(expect_dtype(op, ctx, {{"residual", &residual}, {"weight", &weight}}));
    EMBEDSERVE_ASSIGN_OR_RETURN(cuda_backend::NcclCommunicator * nccl, nccl_of(ctx));
    const bool f32_partials = partial.dtype == DType::kF32;
    return cuda_backend::by_dtype(out.dtype, op, [&](auto tag) {
      using T = decltype(tag);
      return nccl->peer()->sum_add_rms_norm<T>(partial.data, f32_partials, residual.as<T>(), weight.as<const T>(),
                                               out.as<T>(), partial.rows, partial.cols, eps,
                                               cuda_backend::stream(ctx));
    });
  }
#endif
  EMBEDSERVE_RETURN_IF_ERROR(all_reduce(ctx, partial, out));
  return add_rms_norm(ctx, residual, out, weight, eps, out, quantized);
}

bool reads_peers(const DeviceContext& ctx) {
  return ctx.communicator() && ctx.communicator()->size() > 1 && ctx.communicator()->reads_peers();
}

Status share_partials(const DeviceContext& ctx, void* data, size_t bytes) {
  if (!reads_peers(ctx)) return Status();
#if defined(EMBEDSERVE_HAVE_CUDA)
  EMBEDSERVE_ASSIGN_OR_RETURN(cuda_backend::NcclCommunicator * nccl, nccl_of(ctx));
  return nccl->peer()->share(data, bytes);
#else
  (void)data, (void)bytes;
  return no_backend("share_partials");
#endif
}

size_t next_partial_half(const DeviceContext& ctx) {
  if (!reads_peers(ctx)) return 0;
#if defined(EMBEDSERVE_HAVE_CUDA)
  auto nccl = nccl_of(ctx);
  return nccl.ok() ? static_cast<size_t>((*nccl)->peer()->next_half()) : 0;
#else
  return 0;
#endif
}

}  // namespace embedserve::ops

namespace embedserve::ops {

StatusOr<ReduceInFlight> start_all_reduce(const DeviceContext& ctx, const Tensor& partial, const Tensor& sum) {
  if (ctx.device() == Device::kCpu || !ctx.communicator() || ctx.communicator()->size() < 2) {
    EMBEDSERVE_RETURN_IF_ERROR(all_reduce(ctx, partial, sum));
    return ReduceInFlight{};
  }
  if (reads_peers(ctx))
    return internal_error("start_all_reduce: a group that reads peers sums in its stream (all_reduce), never in the "
                          "background");
#if defined(EMBEDSERVE_HAVE_CUDA)
  EMBEDSERVE_RETURN_IF_ERROR(check_sum(ctx, partial, sum));
  EMBEDSERVE_ASSIGN_OR_RETURN(cuda_backend::NcclCommunicator * nccl, nccl_of(ctx));
  EMBEDSERVE_ASSIGN_OR_RETURN(
      const uint64_t ticket,
      nccl->start_all_reduce(partial.data, static_cast<size_t>(partial.numel()),
                             partial.dtype == DType::kF32 ? ncclFloat32 : ncclBfloat16, cuda_backend::stream(ctx),
                             [&](cudaStream_t s) { return round_into_sum(partial, sum, s); }));
  return ReduceInFlight{ticket, true};
#else
  return no_backend("all_reduce");
#endif
}

Status finish_all_reduce(const DeviceContext& ctx, ReduceInFlight& reduce) {
  if (!reduce.pending) return Status();
  reduce.pending = false;
#if defined(EMBEDSERVE_HAVE_CUDA)
  EMBEDSERVE_ASSIGN_OR_RETURN(cuda_backend::NcclCommunicator * nccl, nccl_of(ctx));
  return nccl->join(reduce.ticket, cuda_backend::stream(ctx));
#else
  (void)ctx;
  return no_backend("all_reduce");
#endif
}

}  // namespace embedserve::ops
