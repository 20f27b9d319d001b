// Device helpers for Hopper's warpgroup MMAs (sm_90a only): shared-memory descriptors, wgmma fences and waits,
// the async proxy's fence, named barriers, bulk copies, and the m64n64k16 bf16 product (mbarriers: mma_util.cuh).
#pragma once

#include <cstdint>

namespace embedserve::cuda {

// A shared-memory matrix descriptor with the 128-byte swizzle: start address, leading- and stride-dimension
// byte offsets (each in 16-byte units, 14 bits), swizzle mode 1 in bits 62-63.
__device__ __forceinline__ uint64_t swizzled_descriptor(uint32_t address, uint32_t leading_bytes, uint32_t stride_bytes) {
  return uint64_t((address & 0x3ffff) >> 4) | (uint64_t(leading_bytes >> 4) << 16) |
         (uint64_t(stride_bytes >> 4) << 32) | (uint64_t(1) << 62);
}

// The descriptor of `bytes` (a multiple of 16) past the one given, whose address field (shared memory's 228 KB >> 4:
// 14 bits) cannot carry into the others: one add to the low word, where building each descriptor of a tile from its
// address took the uniform datapath ~5 instructions per product.
__device__ __forceinline__ uint64_t descriptor_plus(uint64_t descriptor, uint32_t bytes) {
  return (descriptor & ~uint64_t{0xffffffffu}) | uint32_t(uint32_t(descriptor) + (bytes >> 4));
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Writes by cp.async (the generic proxy) made visible to wgmma's reads of shared memory (the async proxy).
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Named barrier `id` (1-15) of `threads` threads (a multiple of 32): sync waits for all of them, arrive counts this
// thread and goes on. One warpgroup syncing where the other arrives is a one-way signal from the second to the first.
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void named_barrier_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// The warpgroup's 128 threads wait for each other (named barrier 1 + group; 0 is __syncthreads').
__device__ __forceinline__ void warpgroup_barrier(int group) { named_barrier_sync(1 + group, 128); }
// `bytes` (a multiple of 16) from shared to global memory by the bulk-copy unit; the wait returns once the source
// has been read, so the block may leave while the writes finish.
__device__ __forceinline__ void store_bulk(void* dst, uint32_t src, uint32_t bytes) {
  asm volatile("cp.async.bulk.global.shared::cta.bulk_group [%0], [%1], %2;\n" ::"l"(dst), "r"(src), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void commit_bulk() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
__device__ __forceinline__ void wait_bulk_read() { asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory"); }
// wgmma writes its accumulators asynchronously: an empty asm that "changes" each one keeps the compiler from
// moving their reads or writes across the fence, commit and wait around it.
template <int kN>
__device__ __forceinline__ void pin(float* r) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// d[64 × 64] (+)= a[64 × 16] · b[16 × 64] for the warpgroup: a in registers (mma.sync's A layout per warp, warp w
// rows 16w..16w+15), b from shared memory by descriptor, K-major (kTransB 0) or MN-major (1); d is 32 accumulators
// per thread, overwritten when `accumulate` is 0.
template <int kTransB>
__device__ __forceinline__ void wgmma_64x64x16(float* d, const uint32_t (&a)[4], uint64_t b, int accumulate = 1) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, "
      "%23, %24, %25, %26, %27, %28, %29, %30, %31}, {%32, %33, %34, %35}, %36, p, 1, 1, %38;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate), "n"(kTransB));
#endif
}

}  // namespace embedserve::cuda
