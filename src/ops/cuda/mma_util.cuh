// Device helpers the tensor-core kernels share: bf16 packing, mma.sync, A fragments, shared-memory addresses,
// ldmatrix, cp.async, mbarriers.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace embedserve::cuda {

// Two f32 rounded to bf16 in one 32-bit register, `lo` in the low half (the element with the lower index).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t load32(const __nv_bfloat16* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ __forceinline__ uint32_t smem_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// d[0..3] += a · b for one 16×8×16 tile; fragment layouts as in the PTX ISA (groupID = lane / 4, tid = lane % 4).
__device__ __forceinline__ void mma_m16n8k16(float* d, const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// A fragments (mma.sync's m16n8k16 and wgmma's register layout) of a warp's 16-row band of bf16 rows, kCols wide,
// for this thread: rows g (lo) and g + 8 (hi) of the band, columns 2t, 2t + 1 and 2t + 8, 2t + 9 of each 16-column
// step (g = lane / 4, t = lane % 4). A row marked absent reads as zeros.
template <int kCols>
__device__ __forceinline__ void load_a_fragments(uint32_t (&a)[kCols / 16][4], const __nv_bfloat16* lo, bool has_lo,
                                                 const __nv_bfloat16* hi, bool has_hi, int t) {
#pragma unroll
  for (int s = 0; s < kCols / 16; ++s) {
    const int c = s * 16 + 2 * t;
    a[s][0] = has_lo ? load32(lo + c) : 0u;
    a[s][1] = has_hi ? load32(hi + c) : 0u;
    a[s][2] = has_lo ? load32(lo + c + 8) : 0u;
    a[s][3] = has_hi ? load32(hi + c + 8) : 0u;
  }
}

// Four 8×8 bf16 matrices from shared memory; lanes 8m..8m+7 give the row addresses of matrix m. Plain: lane l
// receives row l/4, columns 2(l%4), 2(l%4)+1 of each; .trans: rows 2(l%4), 2(l%4)+1 of column l/4.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t address) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(address));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const __nv_bfloat16* p) { ldmatrix_x4(r, smem_address(p)); }
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const __nv_bfloat16* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_address(p)));
}

// 16 bytes global → shared without a register round trip; `bytes` 0 writes zeros (keys past the end).
__device__ __forceinline__ void copy16_async(uint32_t dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void copy16_async(void* dst, const void* src, int bytes) {
  copy16_async(smem_address(dst), src, bytes);
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}

// A shared-memory mbarrier (8 bytes, 8-aligned) whose phase completes after `count` arrivals.
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// This thread's arrival, now.
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// This thread's arrival, made once every cp.async it has issued so far has landed (counted in the init's count).
__device__ __forceinline__ void mbarrier_arrive_on_copies(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Returns once the phase of parity `parity` (0 for the first, 1 for the second, 0 for the third, ...) has completed.
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\nretry:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra retry;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}

}  // namespace embedserve::cuda
