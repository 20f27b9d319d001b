// all_reduce: the sum over a tensor-parallel group of each rank's partial result (Megatron's one collective after
// the row-parallel o_proj and down_proj).
#pragma once

#include <cstdint>

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// partial [rows, cols] (dense; f32 or ctx.dtype()) becomes, in place, the sum over every rank of the context's
// communicator of that rank's partial, and sum [rows, cols] (dense, ctx.dtype(); may be partial itself when the
// dtypes agree) gets it in the context's dtype. Every rank must call it with the same shape, in the same order.
// A bf16 context passes f32 partials (the GEMM's f32 accumulator, before rounding), so the sum is rounded to bf16
// once, as a single GPU's GEMM rounds its output once: tensor parallelism then adds no rounding step. Ranks are
// summed in rank order on the CPU (every rank gets the same bits); NCCL picks its own order. Without a
// communicator (one rank) it only converts.
Status all_reduce(const DeviceContext& ctx, const Tensor& partial, const Tensor& sum);

// all_reduce in two steps, so the GPU's link and its arithmetic work at once: start_all_reduce issues the same sum
// to run beside whatever ctx is given next (CUDA: on the communicator's own stream, from the point ctx's stream has
// reached), and finish_all_reduce makes ctx's later work wait for it. Between the two nothing may read or write
// partial or sum; every started sum must be finished before ctx is synchronised or its batch ends. The CPU's
// ops are synchronous: there the sum is done by start_all_reduce and finish_all_reduce does nothing.
struct ReduceInFlight {
  uint64_t ticket = 0;
  bool pending = false;  // started on a stream of its own and not finished yet
};
StatusOr<ReduceInFlight> start_all_reduce(const DeviceContext& ctx, const Tensor& partial, const Tensor& sum);
Status finish_all_reduce(const DeviceContext& ctx, ReduceInFlight& reduce);

}  // namespace embedserve::ops
