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

}  // namespace embedserve::testing
