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
// summed in rank order on the CPU and by peer reads (every rank gets the same bits); NCCL picks its own order.
// Without a communicator (one rank) it only converts.
// A group that reads peers (reads_peers) asks more: partial lies in the buffer this rank shared (share_partials),
// apart from sum, in either dtype (not in place: the other ranks read it); and consecutive sums take their
// partials from alternate halves of that buffer (each rank reads the others' partials where they lie, and a rank
// may overwrite its own only once every rank has moved on to the next sum).
Status all_reduce(const DeviceContext& ctx, const Tensor& partial, const Tensor& sum);

// all_reduce(ctx, partial, out), then add_rms_norm(ctx, residual, out, weight, eps, out, quantized): a sum, the
// residual add and the next norm, which a tensor-parallel decoder layer does back to back twice. A group that
// reads peers runs it as one kernel per rank when nothing is quantised (the sum stays in registers), bitwise the
// two ops' result; elsewhere it is the two ops.
Status all_reduce_add_rms_norm(const DeviceContext& ctx, const Tensor& partial, const Tensor& residual,
                               const Tensor& weight, float eps, const Tensor& out, const Tensor* quantized = nullptr);

// Whether ctx's group sums by reading the other ranks' partials straight from their GPUs' memory (CUDA, every
// pair of GPUs with peer access: one kernel per rank, no NCCL). Such a group never starts sums in the background
// (start_all_reduce): the kernel that sums is the one that waits.
bool reads_peers(const DeviceContext& ctx);
// Offers [data, data + bytes) (this rank's buffer of partials, two halves) to the other ranks of a group that
// reads peers: once, before the first sum, on every rank with the same size. Nothing otherwise.
Status share_partials(const DeviceContext& ctx, void* data, size_t bytes);
// Which half of that buffer the next sum's partial must lie in (0 or 1; always 0 where the group does not read
// peers). Asked, not counted by the caller: a batch that fails between writing a partial and summing it leaves the
// alternation as the sums have it.
size_t next_partial_half(const DeviceContext& ctx);

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
