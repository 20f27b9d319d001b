// What a CPU DeviceContext keeps: the GEMM kernel its bf16 weights run through, chosen once at creation.
#pragma once

#include "ops/context.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {

struct CpuState final : BackendState {
  explicit CpuState(Bf16Kernel k) : bf16_kernel(k) {}
  Bf16Kernel bf16_kernel;
};

// The kernel of a CPU context (the best this CPU runs unless ContextOptions::cpu_gemm_kernel chose another).
inline Bf16Kernel bf16_kernel(const DeviceContext& ctx) {
  const auto* state = dynamic_cast<const CpuState*>(ctx.backend());
  return state ? state->bf16_kernel : best_bf16_kernel();
}

}  // namespace embedserve::ops::cpu
