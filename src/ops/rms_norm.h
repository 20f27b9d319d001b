// rms_norm and add_rms_norm: Qwen3RMSNorm, alone and fused with the residual add before it.
#pragma once

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// out = weight * T(x * rsqrt(mean(x²) + eps)) over each row; x, out [rows, cols] (may alias), weight [1, cols].
// Rows may be strided (x and out sharing the stride) on the CPU; CUDA takes dense rows only.
// Sums in f32; in bf16 the normalised value is rounded before the weight multiplies it, as transformers does.
Status rms_norm(const DeviceContext& ctx, const Tensor& x, const Tensor& weight, float eps, const Tensor& out);

// residual += delta, then out = rms_norm(residual): the residual connection and the next norm, which every
// decoder layer does back to back. A backend may run it as one pass; the result is the same either way. out may
// alias delta. Every operand is checked before residual changes. With `quantized` (an fp8 context, out feeding an
// FP8 GEMM), out's rows are also quantised into it as ops::quantize_for_linear would (one pass on CUDA), so the
// GEMM runs with x_quantized.
Status add_rms_norm(const DeviceContext& ctx, const Tensor& residual, const Tensor& delta, const Tensor& weight,
                    float eps, const Tensor& out, const Tensor* quantized = nullptr);

}  // namespace embedserve::ops
