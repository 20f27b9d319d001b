// gemm_bits_probe: y = x·wᵀ by one mma.sync or wgmma product after another, to compare their bits with cuBLAS's.
#include "gemm_bits_probe.h"

#include <cstdint>

#include "ops/cuda/mma_util.cuh"
#include "ops/cuda/wgmma_util.cuh"

namespace embedserve::bench {
namespace {

using cuda::load32;

// One warp per 16 (n) × 8 (m) tile of y: w's rows as A (16 × 16 per step), x's rows as B (16 × 8, "col": B[k][j]
// is x[j][k]); the four accumulators are y[m0 + 2t (+1)][n0 + g (+8)].
__global__ void __launch_bounds__(128) gemm_mma_sync_kernel(const __nv_bfloat16* __restrict__ x,
                                                            const __nv_bfloat16* __restrict__ w,
                                                            __nv_bfloat16* __restrict__ y, int m, int n, int k) {
  const int n_tiles = n / 16, m_tiles = (m + 7) / 8;
  const int tile = blockIdx.x * 4 + threadIdx.x / 32;
  if (tile >= n_tiles * m_tiles) return;
  const int n0 = (tile % n_tiles) * 16, m0 = (tile / n_tiles) * 8;
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const __nv_bfloat16* w_lo = w + int64_t{n0 + g} * k;
  const __nv_bfloat16* w_hi = w_lo + int64_t{8} * k;
  const bool has_row = m0 + g < m;
  const __nv_bfloat16* x_row = x + int64_t{has_row ? m0 + g : 0} * k;
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int kk = 0; kk < k; kk += 16) {
    const uint32_t a[4] = {load32(w_lo + kk + 2 * t), load32(w_hi + kk + 2 * t), load32(w_lo + kk + 2 * t + 8),
                           load32(w_hi + kk + 2 * t + 8)};
    const uint32_t b0 = has_row ? load32(x_row + kk + 2 * t) : 0u;
    const uint32_t b1 = has_row ? load32(x_row + kk + 2 * t + 8) : 0u;
    cuda::mma_m16n8k16(c, a, b0, b1);
  }
  for (int e = 0; e < 4; ++e) {
    const int row = m0 + 2 * t + e % 2, col = n0 + g + (e / 2) * 8;
    if (row < m) y[int64_t{row} * n + col] = __float2bfloat16_rn(c[e]);
  }
}

// One warpgroup per 64 (n) × 64 (m) tile of y: w's rows as A in registers (warp w: rows 16w..16w+15), x's 64 rows
// of each 64-wide step of k as B in shared memory, K-major, 128-byte swizzle (as the Hopper attention kernel
// stages its keys); four chained m64n64k16 products per step.
__global__ void __launch_bounds__(128) gemm_wgmma_kernel(const __nv_bfloat16* __restrict__ x,
                                                         const __nv_bfloat16* __restrict__ w,
                                                         __nv_bfloat16* __restrict__ y, int m, int n, int k) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(1024) unsigned char stage_bytes[64 * 128 + 1024];
  const uint32_t stage = (cuda::smem_address(stage_bytes) + 1023u) & ~1023u;
  const int n0 = blockIdx.x * 64, m0 = blockIdx.y * 64;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const __nv_bfloat16* w_lo = w + int64_t{n0 + warp * 16 + g} * k;
  const __nv_bfloat16* w_hi = w_lo + int64_t{8} * k;
  float d[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) d[i] = 0.0f;
  for (int kc = 0; kc < k; kc += 64) {
    __syncthreads();  // the previous step's products have read the stage (each thread waited for its own)
    for (int c = threadIdx.x; c < 64 * 8; c += 128) {
      const int row = c / 8, unit = c % 8;
      const bool in = m0 + row < m;
      cuda::copy16_async(stage + row * 128 + ((unit ^ (row % 8)) << 4),
                         x + (in ? int64_t{m0 + row} * k + kc + unit * 8 : 0), in ? 16 : 0);
    }
    cuda::commit_copies();
    cuda::wait_copies<0>();
    cuda::fence_async_shared();
    __syncthreads();
    uint32_t a[4][4];
    cuda::load_a_fragments<64>(a, w_lo + kc, true, w_hi + kc, true, t);
    cuda::wgmma_fence();
#pragma unroll
    for (int kd = 0; kd < 4; ++kd)
      cuda::wgmma_64x64x16<0>(d, a[kd], cuda::swizzled_descriptor(stage + kd * 32, 16, 1024), kc > 0 || kd > 0);
    cuda::wgmma_commit();
    cuda::wgmma_wait<0>();
    cuda::pin<32>(d);
  }
  // d[4j + e]: y's row m0 + 8j + 2t + e % 2 (the product's column), column n0 + 16·warp + g (+ 8 for e ≥ 2).
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = m0 + 8 * j + 2 * t + e % 2, col = n0 + warp * 16 + g + (e / 2) * 8;
      if (row < m) y[int64_t{row} * n + col] = __float2bfloat16_rn(d[4 * j + e]);
    }
#endif
}

// How many cycles one step of a chain of dependent mma.sync products takes: `chains` accumulators (1, 2 or 4, each
// its own chain, as a warp with 8, 16 or 32 of x's rows would keep), `steps` products each, operands in registers.
__global__ void mma_chain_kernel(int steps, int chains, long long* cycles, float* sink) {
  const int lane = threadIdx.x % 32;
  const uint32_t a[4] = {0x3f803f80u + lane, 0x3f803f80u, 0x3f803f80u, 0x3f803f80u};
  const uint32_t b0 = 0x3c003c00u + lane, b1 = 0x3c003c00u;
  float c[4][4] = {};
  __syncwarp();
  const long long start = clock64();
  if (chains == 1) {
    for (int s = 0; s < steps; ++s) cuda::mma_m16n8k16(c[0], a, b0, b1);
  } else if (chains == 2) {
    for (int s = 0; s < steps; ++s) cuda::mma_m16n8k16(c[0], a, b0, b1), cuda::mma_m16n8k16(c[1], a, b1, b0);
  } else {
    for (int s = 0; s < steps; ++s)
      cuda::mma_m16n8k16(c[0], a, b0, b1), cuda::mma_m16n8k16(c[1], a, b1, b0), cuda::mma_m16n8k16(c[2], a, b0, b0),
          cuda::mma_m16n8k16(c[3], a, b1, b1);
  }
  const float sum = c[0][0] + c[1][1] + c[2][2] + c[3][3];  // reading the accumulators waits for the last products
  __syncwarp();
  const long long end = clock64();
  if (lane == 0) cycles[blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32] = end - start;
  sink[blockIdx.x * blockDim.x + threadIdx.x] = sum;
}

}  // namespace

cudaError_t probe_gemm_mma_sync(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int m, int n, int k,
                                cudaStream_t stream) {
  if (m <= 0 || n % 16 != 0 || k % 16 != 0) return cudaErrorInvalidValue;
  const int64_t tiles = int64_t{n / 16} * ((m + 7) / 8);
  gemm_mma_sync_kernel<<<static_cast<unsigned>((tiles + 3) / 4), 128, 0, stream>>>(x, w, y, m, n, k);
  return cudaGetLastError();
}

cudaError_t probe_gemm_wgmma(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int m, int n, int k,
                             cudaStream_t stream) {
  if (m <= 0 || n % 64 != 0 || k % 64 != 0) return cudaErrorInvalidValue;
  int device = 0, major = 0, minor = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (major != 9 || minor != 0) return cudaErrorNotSupported;
  gemm_wgmma_kernel<<<dim3(static_cast<unsigned>(n / 64), static_cast<unsigned>((m + 63) / 64)), 128, 0, stream>>>(
      x, w, y, m, n, k);
  return cudaGetLastError();
}

double probe_mma_chain_cycles(int steps, int chains, int warps) {
  long long* cycles = nullptr;
  float* sink = nullptr;
  cudaMalloc(&cycles, sizeof(long long) * warps);
  cudaMalloc(&sink, sizeof(float) * 32 * warps);
  double per_step = -1;
  for (int run = 0; run < 2; ++run) {  // the first run loads the kernel
    mma_chain_kernel<<<1, 32 * warps>>>(steps, chains, cycles, sink);
    if (cudaDeviceSynchronize() != cudaSuccess) break;
    long long host[32] = {};
    cudaMemcpy(host, cycles, sizeof(long long) * warps, cudaMemcpyDeviceToHost);
    long long worst = 0;
    for (int w = 0; w < warps; ++w) worst = host[w] > worst ? host[w] : worst;
    per_step = double(worst) / steps;
  }
  cudaFree(cycles);
  cudaFree(sink);
  return per_step;
}

}  // namespace embedserve::bench
