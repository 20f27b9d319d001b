// e4m3_codes_check: one block per row maximum, its threads over all 65,536 bf16 values.
#include "e4m3_codes_check.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "ops/cuda/fp8_row.cuh"

namespace embedserve::cuda::testing {
namespace {

struct Counts {
  unsigned long long pairs, mismatches, first;  // first: (amax bits << 16 | value bits) + 1 of a mismatch, or 0
};

__device__ float bf16_bits_to_float(uint32_t bits) { return __uint_as_float(bits << 16); }

__global__ void compare_kernel(Counts* counts) {
  // blockIdx.x: the row maximum's bf16 bits, 0x0001 (the least subnormal) to 0x7f80 (+inf).
  const uint32_t amax_bits = blockIdx.x + 1;
  const float amax = bf16_bits_to_float(amax_bits);
  const float scale = e4m3_row_scale(amax);
  const E4m3RowCoder coder(scale);
  unsigned long long pairs = 0, mismatches = 0;
  for (uint32_t v_bits = threadIdx.x; v_bits < 65536; v_bits += blockDim.x) {
    const float v = bf16_bits_to_float(v_bits);
    if (!(fabsf(v) <= amax) && !isnan(v)) continue;  // larger than the row's maximum: not in such a row
    ++pairs;
    if (coder.code(v) != e4m3_code(v, scale)) {
      ++mismatches;
      atomicCAS(&counts->first, 0ull, ((static_cast<unsigned long long>(amax_bits) << 16) | v_bits) + 1);
    }
  }
  atomicAdd(&counts->pairs, pairs);
  atomicAdd(&counts->mismatches, mismatches);
}

}  // namespace

E4m3CodesCheck check_e4m3_row_coder() {
  E4m3CodesCheck out;
  Counts* counts = nullptr;
  if (cudaMalloc(&counts, sizeof(Counts)) != cudaSuccess) return out;
  cudaMemset(counts, 0, sizeof(Counts));
  compare_kernel<<<0x7f80, 256>>>(counts);
  Counts host{};
  const bool ok = cudaGetLastError() == cudaSuccess &&
                  cudaMemcpy(&host, counts, sizeof(Counts), cudaMemcpyDeviceToHost) == cudaSuccess;
  cudaFree(counts);
  if (!ok) return out;
  out.ran = true;
  out.pairs = host.pairs;
  out.mismatches = host.mismatches;
  if (host.first) {
    out.first_amax = static_cast<uint32_t>((host.first - 1) >> 16);
    out.first_value = static_cast<uint32_t>((host.first - 1) & 0xffff);
  }
  return out;
}

}  // namespace embedserve::cuda::testing
