// Weight upload through pinned memory: each worker converts a chunk from the page cache into its pinned buffer, then
// sends it on its own stream while other workers fill theirs, so host reads and PCIe transfers overlap.
#include "ops/cuda/cuda_upload.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_context.h"

namespace embedserve::ops::cuda_backend {
namespace {

// More workers than this add pinned memory (16 MB each for bf16) without adding PCIe bandwidth.
constexpr int kMaxWorkers = 8;

Status upload_worker(const DeviceContext& ctx, std::span<const UploadChunk> chunks, std::atomic<size_t>& next,
                     std::vector<uint8_t>& flagged) {
  int previous = -1;
  EMBEDSERVE_RETURN_IF_ERROR(set_device(ctx.ordinal(), &previous));  // a new thread starts on device 0
  // A CUDA context's weights and vectors are all in its dtype, or e4m3 (with scales, in at most as many bytes).
  const size_t dst_size = dtype_size(ctx.dtype());
  void* staging = nullptr;
  cudaStream_t stream = nullptr;
  Status st = cuda::cuda_status(cudaHostAlloc(&staging, WeightUploader::kChunkElements * dst_size, cudaHostAllocDefault),
                                "cudaHostAlloc of a weight staging buffer");
  if (st.ok()) st = cuda::cuda_status(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  for (size_t i = next.fetch_add(1); st.ok() && i < chunks.size(); i = next.fetch_add(1)) {
    const UploadChunk& c = chunks[i];
    // The previous chunk's transfer reads the staging buffer: wait for it before overwriting.
    st = cuda::cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    if (!st.ok()) break;
    if (c.dst_dtype == DType::kF8E4M3) {
      // Codes, then the rows' scales behind them in the same staging buffer (plan() keeps both within it).
      auto* scales = reinterpret_cast<float*>(static_cast<char*>(staging) + fp8_scales_offset(c.rows(), c.cols));
      flagged[i] = fill_chunk(c, staging, scales);
      st = cuda::cuda_status(cudaMemcpyAsync(c.dst, staging, c.count, cudaMemcpyHostToDevice, stream),
                             "cudaMemcpyAsync of a weight");
      if (st.ok())
        st = cuda::cuda_status(cudaMemcpyAsync(c.dst_scales, scales, static_cast<size_t>(c.rows()) * sizeof(float),
                                               cudaMemcpyHostToDevice, stream),
                               "cudaMemcpyAsync of a weight's scales");
      continue;
    }
    flagged[i] = fill_chunk(c, staging, nullptr);
    st = cuda::cuda_status(cudaMemcpyAsync(c.dst, staging, c.count * dtype_size(c.dst_dtype), cudaMemcpyHostToDevice,
                                           stream),
                           "cudaMemcpyAsync of a weight");
  }
  if (stream) {
    const Status done = cuda::cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    if (st.ok()) st = done;
    cudaStreamDestroy(stream);
  }
  if (staging) cudaFreeHost(staging);
  cudaSetDevice(previous);
  return st;
}

}  // namespace

Status upload_chunks(const DeviceContext& ctx, std::span<const UploadChunk> chunks, int workers,
                     std::vector<uint8_t>* flagged) {
  if (chunks.empty()) return Status();
  workers = std::clamp(workers, 1, kMaxWorkers);
  std::atomic<size_t> next{0};
  std::vector<Status> results(static_cast<size_t>(workers));  // one slot per worker: no lock
  std::vector<std::thread> pool;
  for (int t = 0; t < workers; ++t)
    pool.emplace_back([&, t] { results[static_cast<size_t>(t)] = upload_worker(ctx, chunks, next, *flagged); });
  for (std::thread& t : pool) t.join();
  for (const Status& r : results) EMBEDSERVE_RETURN_IF_ERROR(r);
  return Status();
}

}  // namespace embedserve::ops::cuda_backend
