// Graph recording and replay on a context's stream. Capture is thread-local, so another engine's thread may
// allocate or launch meanwhile; a body that fails while recording leaves nothing cached.
#include "ops/cuda/cuda_graph.h"

#include <cuda_runtime.h>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_context.h"
#include "ops/graph.h"

namespace embedserve::ops::cuda_backend {

void GraphCache::clear() {
  for (auto& [key, entry] : entries) cudaGraphExecDestroy(entry.exec);
  entries.clear();
  order.clear();
  recent.clear();
  recent_next = 0;
  recent_count.clear();
}

Status run_recorded(const DeviceContext& ctx, uint64_t key, const std::function<Status()>& body, bool record_now) {
  CudaState& st = const_cast<CudaState&>(state(ctx));
  GraphCache& cache = st.graphs;
  if (cache.capacity == 0) return body();
  if (auto it = cache.entries.find(key); it != cache.entries.end()) {
    cache.order.splice(cache.order.begin(), cache.order, it->second.position);  // most recently used first
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(it->second.exec, st.stream));
    return Status();
  }
  // A shape runs live until it is frequent: kRecordAfterCalls of the last kRecentCalls live calls. Recording and
  // instantiating a graph of a few hundred launches costs several live runs, which pays only for a shape that keeps
  // coming: queries repeat a few shapes, but a batch job's inputs of random lengths, alone or beside queries, make
  // a new shape nearly every call. Recorded at first sight (later at second), those are the likeliest cause of what
  // the H200 showed beside a starting job: 16-token queries waiting 16-27 ms at a time, in groups, where the bulk
  // calls were capped at ~530 tokens (~3 ms) — p99 2.7 → 10.4 ms.
  if (cache.recent.size() < kRecentCalls) cache.recent.resize(kRecentCalls, 0);
  const uint64_t old = cache.recent[cache.recent_next];
  if (auto it = cache.recent_count.find(old); it != cache.recent_count.end() && --it->second == 0)
    cache.recent_count.erase(it);
  cache.recent[cache.recent_next] = key;
  cache.recent_next = (cache.recent_next + 1) % kRecentCalls;
  if (++cache.recent_count[key] < kRecordAfterCalls && !record_now) return body();
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(st.stream, cudaStreamCaptureModeThreadLocal));
  const Status recorded = body();
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(st.stream, &graph);
  if (!recorded.ok() || ended != cudaSuccess) {
    if (graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // a launch refused during capture must not fail the next, unrelated call
    if (!recorded.ok()) return recorded;
    return cuda::cuda_status(ended, "cudaStreamEndCapture");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  EMBEDSERVE_RETURN_IF_ERROR(cuda::cuda_status(made, "cudaGraphInstantiate"));
  if (cache.entries.size() >= cache.capacity) {
    const uint64_t oldest = cache.order.back();
    cudaGraphExecDestroy(cache.entries[oldest].exec);
    cache.entries.erase(oldest);
    cache.order.pop_back();
  }
  cache.order.push_front(key);
  cache.entries[key] = GraphCache::Entry{exec, cache.order.begin()};
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(exec, st.stream));
  return Status();
}

size_t recorded_graphs(const DeviceContext& ctx) { return state(ctx).graphs.entries.size(); }

}  // namespace embedserve::ops::cuda_backend
