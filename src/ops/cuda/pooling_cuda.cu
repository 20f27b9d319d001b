// pool_normalize: one block per sequence; threads own columns, so each row is read coalesced.
#include "ops/cuda/pooling_cuda.h"

#include <cuda_bf16.h>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_dtype.h"
#include "ops/cuda/norm_row.cuh"

namespace embedserve::cuda {
namespace {

constexpr int kThreads = kNormThreads;  // block_sum (norm_row.cuh) reduces over exactly this many

template <typename T>
__global__ void pool_kernel(const T* __restrict__ hidden, int64_t dim, const int32_t* __restrict__ offsets,
                            bool normalize, float* __restrict__ out) {
  const int64_t s = blockIdx.x;
  const int64_t begin = offsets[s], end = offsets[s + 1];
  float* o = out + s * dim;
  double ss = 0.0;
  for (int64_t c = threadIdx.x; c < dim; c += kThreads) {
    double sum = 0.0;
    for (int64_t r = begin; r < end; ++r) sum += to_f32(hidden[r * dim + c]);
    const float v = static_cast<float>(sum / static_cast<double>(end - begin));
    o[c] = v;
    ss += static_cast<double>(v) * v;
  }
  if (!normalize) return;
  const double total = block_sum<double>(ss);
  if (total <= 0.0) return;
  const float inv = static_cast<float>(1.0 / sqrt(total));
  for (int64_t c = threadIdx.x; c < dim; c += kThreads) o[c] *= inv;  // each thread rescales its own columns
}

}  // namespace

template <typename T>
Status pool_normalize(const T* hidden, int64_t dim, const int32_t* offsets, int64_t n_seqs, bool normalize,
                      float* out, cudaStream_t stream) {
  if (dim <= 0 || n_seqs < 0 || n_seqs > 0x7fffffff) return invalid_argument("pool_normalize: bad shape");
  if (n_seqs == 0) return Status();
  pool_kernel<<<static_cast<unsigned>(n_seqs), kThreads, 0, stream>>>(hidden, dim, offsets, normalize, out);
  return cuda_status(cudaGetLastError(), "pool_normalize launch");
}

template Status pool_normalize<float>(const float*, int64_t, const int32_t*, int64_t, bool, float*, cudaStream_t);
template Status pool_normalize<__nv_bfloat16>(const __nv_bfloat16*, int64_t, const int32_t*, int64_t, bool, float*,
                                              cudaStream_t);

}  // namespace embedserve::cuda
