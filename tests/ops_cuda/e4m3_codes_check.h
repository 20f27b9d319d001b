// e4m3_codes_check: E4m3RowCoder (ops/cuda/fp8_row.cuh) against the division it replaces, on the GPU.
#pragma once

#include <cstdint>

namespace embedserve::cuda::testing {

struct E4m3CodesCheck {
  uint64_t pairs = 0;       // (row scale, value) pairs compared
  uint64_t mismatches = 0;  // pairs whose codes differ
  uint32_t first_amax = 0;  // bf16 bits of the first mismatch's row maximum and value (0 if none)
  uint32_t first_value = 0;
  bool ran = false;         // false: no GPU, or a CUDA error
};

// For every bf16 value a held row can have as its largest magnitude (every finite positive bf16, and +inf), the
// row's scale as quantize_held_row takes it, and every bf16 value v with |v| ≤ that maximum (NaNs too): the code
// E4m3RowCoder gives against e4m3_code(v, scale). ~2^31 pairs.
E4m3CodesCheck check_e4m3_row_coder();

}  // namespace embedserve::cuda::testing
