// Element-wise ops of the CUDA backend: SiLU·mul (Qwen3MLP), the residual add, and row gathers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::cuda {

// out T [n, d] = T(T(silu(gate)) * up), as torch's bf16 act_fn(gate_proj(x)) * up_proj(x) rounds (each op's
// result is a bf16 tensor); gate and up rows are `in_stride` elements apart (both halves of one fused
// gate|up projection), out rows d apart.
// With q set, each out row is also quantised to e4m3 (q [n, d], q_scales f32 [n]) as quantize_rows_e4m3 would
// quantise it: the input of the FP8 down projection, written by the block that computed the row. write_out false
// (with q): nothing reads out afterwards, and the kernels that quantise rows held in registers skip writing it.
template <typename T>
Status silu_mul(const T* gate, const T* up, int64_t in_stride, T* out, int64_t n, int64_t d, cudaStream_t stream,
                uint8_t* q = nullptr, float* q_scales = nullptr, bool write_out = true);

// x T [n] = T(x + y): the residual connections.
template <typename T>
Status add(T* x, const T* y, int64_t n, cudaStream_t stream);

// out T [n_rows, dim] = rows `rows` (int32 [n_rows] on the device) of x T [*, dim]. out must not overlap x:
// blocks run in any order, so an in-place gather could overwrite a row before it is read.
template <typename T>
Status gather_rows(const T* x, int64_t dim, const int32_t* rows, int64_t n_rows, T* out, cudaStream_t stream);

}  // namespace embedserve::cuda
