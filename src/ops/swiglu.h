// swiglu: Qwen3MLP's act_fn(gate_proj(x)) * up_proj(x), read from one fused gate|up projection.
#pragma once

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// out [n, d] = T(T(silu(gate)) * up) where gate_up [n, 2d] holds gate in its first d columns and up in the rest
// (the gate|up weights stacked into one GEMM); each op's result rounded to T as torch rounds it.
Status swiglu(const DeviceContext& ctx, const Tensor& gate_up, const Tensor& out);

}  // namespace embedserve::ops
