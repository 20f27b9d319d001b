// A plain double-precision Qwen3 forward pass for one sequence: the model test's ground truth.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tiny_qwen3.h"

namespace embedserve::testing {

// Hidden states after the final norm, f64 [ids.size(), hidden], computed naively: every sum in double,
// RoPE angles exact (position · theta^(-2i/d) in double), no blocking, no pooled-rows shortcut.
std::vector<double> reference_qwen3(const TinyQwen3& model, std::span<const int32_t> ids);

// The pooled vector of reference_qwen3's states for spec.pooling ("lasttoken", "mean", "cls"), L2-normalised.
std::vector<double> reference_embedding(const TinyQwen3& model, std::span<const int32_t> ids);

// Cosine between an engine's float32 vector and the double-precision reference.
double cosine(std::span<const float> got, std::span<const double> reference);

// The least cosine a CPU engine's vector of a tiny model keeps to the reference. f32: sums in f32 over a few
// hundred terms, ~1e-6 relative per layer, so 1 − cos ≤ 1e-5 with room. bf16 weights with f32 activations: the
// AVX512-BF16 kernel rounds every GEMM input to bf16 (2^-8 relative, ~2^-8/√3 on a dot product) at 7 GEMMs per
// layer, a relative error of ~1e-2 at most after a few layers, and 1 − cos ≈ ½‖δ‖² ≤ 1e-4 (measured: 1.6e-5).
inline double min_cpu_cosine(bool bf16_weights) { return bf16_weights ? 0.9999 : 0.99999; }

}  // namespace embedserve::testing
