// Programmatic dependent launch: a kernel starting before the one ahead of it on the stream has finished.
#pragma once

namespace embedserve::cuda {

// A kernel launched with programmatic stream serialization (skinny_gemm) may start once every block of the kernel
// ahead of it has called let_dependents_start (or exited), does what does not depend on that kernel (streaming
// weights), and calls wait_for_prior_grid before it reads anything that kernel writes: that waits for the kernel to
// finish and its writes to be visible. The kernels a query's GEMMs follow (norms, SwiGLU, attention, the pooled
// rows' gather) call let_dependents_start first thing; where the kernel after them is launched plainly (cuBLAS,
// every other kernel) it changes nothing.
__device__ __forceinline__ void let_dependents_start() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void wait_for_prior_grid() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

}  // namespace embedserve::cuda
