// skinny_gemm: a warp per 16 of w's rows, one thread copying x's and w's boxes by TMA into a ring, mma.sync in k order.
#include "ops/cuda/skinny_gemm_cuda.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include "ops/cuda/dependent_launch.cuh"
#include "ops/cuda/mma_util.cuh"

namespace embedserve::cuda {
namespace {

constexpr int kStageK = 256;  // k a stage holds: 16 products of each chain, in four 64-wide boxes
constexpr int kBoxK = 64;     // a box's row: 128 bytes, the 128-byte swizzle's span

template <int kWarps, int kRows>
struct Shape {
  static constexpr int kWRows = 16 * kWarps;
  static constexpr int kWBoxBytes = kWRows * kBoxK * 2, kXBoxBytes = kRows * kBoxK * 2;
  static constexpr int kStageBytes = (kStageK / kBoxK) * (kWBoxBytes + kXBoxBytes);
  // ~96 KB of stages in flight (two blocks a multiprocessor where the grid needs it), at least four.
  static constexpr int kStages = 96 * 1024 / kStageBytes > 4 ? 96 * 1024 / kStageBytes : 4;
  static constexpr int kThreads = 32 * (kWarps + 1);  // the last warp's first thread issues the copies
  static constexpr int kSmem = 1024 + kStages * kStageBytes + 2 * 8 * kStages;  // 1,024: the stages' alignment
};

// A box's rows are 128 bytes, 16-byte chunk c of row r at chunk c ^ (r % 8) (the tensor map's 128-byte swizzle, on a
// 1,024-aligned box): ldmatrix's 8 rows of one chunk fall in 8 different bank groups.
__device__ __forceinline__ uint32_t chunk_address(uint32_t box, int row, int chunk) {
  return box + row * 128 + ((chunk ^ (row & 7)) << 4);
}

__device__ __forceinline__ void arrive_expecting(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// The box at (column c0, row r0) of `map` into shared memory at `dst`, counted on `bar` as it lands.
__device__ __forceinline__ void copy_box(uint32_t dst, const CUtensorMap& map, int c0, int r0, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(&map)), "r"(c0), "r"(r0), "r"(bar)
      : "memory");
}

// Block b: w's rows n0 = b·16·kWarps …, computing warp w of them rows n0 + 16w …; a stage is four 64-column boxes
// of those rows, then four of x's kRows rows (zeros past m: the tensor map's bounds). One thread of the last warp
// copies them with the tensor memory accelerator, a few instructions a stage where 16-byte copies took a warp a
// thousand (the cp.async versions of 2026-12-02 were issue-bound). Stage s's slot is full once its bytes have
// landed (the full mbarrier's transaction count) and empty once every computing warp has read it.
template <int kWarps, int kRows>
__global__ void __launch_bounds__(Shape<kWarps, kRows>::kThreads)
    skinny_gemm_kernel(const __grid_constant__ CUtensorMap w_map, const __grid_constant__ CUtensorMap x_map,
                       __nv_bfloat16* __restrict__ y, int m, int n, int k) {
  using S = Shape<kWarps, kRows>;
  constexpr int kHalves = kRows / 16;  // 16 of x's rows are two products of 8 per step, sharing w's fragment
  constexpr int kBoxes = kStageK / kBoxK;
  extern __shared__ unsigned char ring[];
  const uint32_t base = (smem_address(ring) + 1023u) & ~1023u;
  const uint32_t full = base + S::kStages * S::kStageBytes, empty = full + 8 * S::kStages;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int n0 = blockIdx.x * S::kWRows;
  const int stages = k / kStageK;
  if (threadIdx.x < S::kStages) {
    mbarrier_init(full + 8 * threadIdx.x, 1);
    mbarrier_init(empty + 8 * threadIdx.x, kWarps);
  }
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");  // the inits, seen by the copy unit
  __syncthreads();

  if (warp == kWarps) {
    if (lane != 0) return;
    // The first stages' boxes of w before waiting for the kernel ahead (launched as its programmatic dependent, this
    // one starts while that one runs): w is the weights, x that kernel's output.
    const int ahead = stages < S::kStages ? stages : S::kStages;
    for (int s = 0; s < ahead; ++s) {
      arrive_expecting(full + 8 * s, S::kStageBytes);
#pragma unroll
      for (int b = 0; b < kBoxes; ++b)
        copy_box(base + s * S::kStageBytes + b * S::kWBoxBytes, w_map, s * kStageK + b * kBoxK, n0, full + 8 * s);
    }
    wait_for_prior_grid();
    for (int s = 0; s < stages; ++s) {
      const int slot = s % S::kStages;
      const uint32_t stage = base + slot * S::kStageBytes, bar = full + 8 * slot;
      if (s >= ahead) {
        mbarrier_wait(empty + 8 * slot, (s / S::kStages - 1) & 1);
        arrive_expecting(bar, S::kStageBytes);
#pragma unroll
        for (int b = 0; b < kBoxes; ++b) copy_box(stage + b * S::kWBoxBytes, w_map, s * kStageK + b * kBoxK, n0, bar);
      }
#pragma unroll
      for (int b = 0; b < kBoxes; ++b)
        copy_box(stage + kBoxes * S::kWBoxBytes + b * S::kXBoxBytes, x_map, s * kStageK + b * kBoxK, 0, bar);
    }
    return;
  }

  // The fragments of step j (k 16j …) of a stage: w's as A (matrices: rows 0–7 and 8–15 of the warp's band, k
  // 0–7, then k 8–15), x's as B (per 16 rows: rows 0–7 k 0–7 and 8–15, rows 8–15 k 0–7 and 8–15).
  struct Fragments {
    uint32_t a[4];
    uint32_t b[kHalves][4];
  };
  auto load_fragments = [&](Fragments& f, uint32_t stage, int j) {
    const uint32_t w_box = stage + (j / 4) * S::kWBoxBytes;
    const uint32_t x_box = stage + kBoxes * S::kWBoxBytes + (j / 4) * S::kXBoxBytes;
    const int chunk = 2 * (j % 4);
    ldmatrix_x4(f.a, chunk_address(w_box, warp * 16 + (lane & 15), chunk + (lane >> 4)));
#pragma unroll
    for (int h = 0; h < kHalves; ++h)
      ldmatrix_x4(f.b[h], chunk_address(x_box, 16 * h + ((lane >> 4) << 3) + (lane & 7), chunk + ((lane >> 3) & 1)));
  };
  float c[2 * kHalves][4] = {};
  Fragments cur, next;
  mbarrier_wait(full, 0);
  load_fragments(next, base, 0);
  for (int s = 0; s < stages; ++s) {
    const int slot = s % S::kStages;
    const uint32_t stage = base + slot * S::kStageBytes;
#pragma unroll
    for (int j = 0; j < kStageK / 16; ++j) {
      cur = next;  // loaded one step earlier: each step's products wait on a product, not on a load
      if (j + 1 < kStageK / 16) {
        load_fragments(next, stage, j + 1);
      } else if (s + 1 < stages) {
        const int following = (s + 1) % S::kStages;
        mbarrier_wait(full + 8 * following, ((s + 1) / S::kStages) & 1);
        load_fragments(next, base + following * S::kStageBytes, 0);
      }
#pragma unroll
      for (int h = 0; h < kHalves; ++h) {
        mma_m16n8k16(c[2 * h], cur.a, cur.b[h][0], cur.b[h][1]);
        mma_m16n8k16(c[2 * h + 1], cur.a, cur.b[h][2], cur.b[h][3]);
      }
    }
    // This stage's last fragments are in registers, consumed by the products just issued: the slot may be refilled.
    __syncwarp();
    if (lane == 0) mbarrier_arrive(empty + 8 * slot);
  }

  // c[i]: x's rows 8i + 2t (+1) (elements 0, 1 and 2, 3), w's rows g (0, 1) and g + 8 (2, 3) of the warp's band.
  const int g = lane / 4, t = lane % 4;
#pragma unroll
  for (int i = 0; i < 2 * kHalves; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = 8 * i + 2 * t + (e & 1), col = n0 + warp * 16 + g + (e >> 1) * 8;
      if (row < m) y[int64_t{row} * n + col] = __float2bfloat16_rn(c[i][e]);
    }
}

// A tensor map of row-major bf16 [rows, cols] (cols a multiple of 8) in boxes of 64 columns × box_rows rows, the
// 128-byte swizzle; rows past `rows` read as zeros. cuTensorMapEncodeTiled is the driver's: found through the
// runtime, so nothing links libcuda.
cudaError_t encode_map(CUtensorMap* map, const void* data, int rows, int cols, int box_rows) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found) !=
            cudaSuccess ||
        found != cudaDriverEntryPointSuccess)
      fn = nullptr;
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  if (!encode) return cudaErrorNotSupported;
  const cuuint64_t dims[2] = {cuuint64_t(cols), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(cols) * 2};
  const cuuint32_t box[2] = {kBoxK, cuuint32_t(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(data), dims, strides, box,
                            element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

template <int kWarps, int kRows>
cudaError_t launch(cudaStream_t stream, const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y, int m, int n,
                   int k) {
  using S = Shape<kWarps, kRows>;
  // Past 48 KB a kernel's dynamic shared memory must be allowed, on each device (a host call, allowed while
  // recording a graph; the attention kernels do the same).
  const cudaError_t allowed =
      cudaFuncSetAttribute(skinny_gemm_kernel<kWarps, kRows>, cudaFuncAttributeMaxDynamicSharedMemorySize, S::kSmem);
  if (allowed != cudaSuccess) return allowed;
  CUtensorMap w_map, x_map;
  cudaError_t e = encode_map(&w_map, w, n, k, S::kWRows);
  if (e == cudaSuccess) e = encode_map(&x_map, x, m, k, kRows);
  if (e != cudaSuccess) return e;
  // As the programmatic dependent of the kernel ahead (dependent_launch.cuh): the blocks start while it runs.
  cudaLaunchAttribute early{};
  early.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  early.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(n / S::kWRows));
  config.blockDim = dim3(S::kThreads);
  config.dynamicSmemBytes = S::kSmem;
  config.stream = stream;
  config.attrs = &early;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, skinny_gemm_kernel<kWarps, kRows>, w_map, x_map, y, m, n, k);
}

// 32 blocks that let their dependents start, then wait ~2 µs: the length of a query layer's norm or SwiGLU on an H200.
__global__ void stand_in_kernel() {
  let_dependents_start();
  const long long start = clock64();
  while (clock64() - start < 4000) {
  }
}

}  // namespace

cudaError_t launch_stand_in(cudaStream_t stream) {
  stand_in_kernel<<<32, 128, 0, stream>>>();
  return cudaGetLastError();
}

bool skinny_gemm_fits(int64_t m, int64_t n, int64_t k, int warps) {
  return m >= 1 && m <= kSkinnyMaxRows && (warps == 1 || warps == 2 || warps == 4) && k >= kStageK &&
         k % kStageK == 0 && k <= (int64_t{1} << 30) && n % (16 * warps) == 0 && n <= (int64_t{1} << 30);
}

cudaError_t skinny_gemm(cudaStream_t stream, const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* y,
                        int64_t m, int64_t n, int64_t k, int warps) {
  if (!skinny_gemm_fits(m, n, k, warps)) return cudaErrorInvalidValue;
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const bool sixteen = m <= 16;
  switch (warps) {
    case 1: return sixteen ? launch<1, 16>(stream, x, w, y, mi, ni, ki) : launch<1, 32>(stream, x, w, y, mi, ni, ki);
    case 2: return sixteen ? launch<2, 16>(stream, x, w, y, mi, ni, ki) : launch<2, 32>(stream, x, w, y, mi, ni, ki);
    default: return sixteen ? launch<4, 16>(stream, x, w, y, mi, ni, ki) : launch<4, 32>(stream, x, w, y, mi, ni, ki);
  }
}

}  // namespace embedserve::cuda
