// swiglu: Qwen3MLP's act_fn(gate_proj(x)) * up_proj(x), read from one fused gate|up projection.
#pragma once

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// out [n, d] = T(T(silu(gate)) * up) where gate_up [n, 2d] holds gate in its first d columns and up in the rest
// (the gate|up weights stacked into one GEMM); each op's result rounded to T as torch rounds it.
// With `quantized` (an fp8 context, out feeding the FP8 down projection), out's rows are also quantised into it
// as ops::quantize_for_linear would (in the same kernel on CUDA), so the GEMM runs with x_quantized; then
// keep_out = false says nothing reads out afterwards, and out's contents become unspecified: CUDA's bf16 kernel
// does not write it (on the 4B, 319 MB a layer of a 16k-token batch), the CPU computes through it anyway.
Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out, const Tensor* quantized = nullptr,
              bool keep_out = true);

}  // namespace embedserve::ops
