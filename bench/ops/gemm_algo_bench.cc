// gemm_algo_bench: every cuBLASLt bf16 algorithm the heuristic offers for the models' projection shapes (with
// `search`, every split-K-free configuration cuBLASLt accepts), skinny_gemm in each block size, and two plain kernels
// of our own, timed and checked bit for bit against cublasGemmEx without a workspace on a 16,384-row batch: which
// kernels give a row the bits it has in any batch.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.h"
#include "gemm_bits_probe.h"
#include "ops/cuda/cublas_loader.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/linear_cuda.h"
#include "ops/cuda/skinny_gemm_cuda.h"

namespace {

using embedserve::Status;
namespace cuda = embedserve::cuda;

using embedserve::bench::check;
void check_cuda(cudaError_t e, const char* what) { check(cuda::cuda_status(e, what), "CUDA"); }
void check_blas(cublasStatus_t s, const char* what) {
  check(s == CUBLAS_STATUS_SUCCESS ? Status() : embedserve::internal_error("cuBLAS status " + std::to_string(int(s))),
        what);
}

// Uniform bf16 values in [-1, 1) from a xorshift stream: fast for 10^8 values, and free of NaNs.
std::vector<uint16_t> random_bf16(size_t n, uint64_t seed) {
  std::vector<uint16_t> out(n);
  uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& x : out) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    const float f = static_cast<float>(static_cast<int32_t>(s >> 32)) * (1.0f / 2147483648.0f);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    x = static_cast<uint16_t>(bits >> 16);
  }
  return out;
}

struct Shape {
  const char* name;
  int n, k;
};

// The projections as the engine runs them (k|v|q one GEMM, gate|up one GEMM), for the 0.6B, the 4B and the 8B.
const Shape kShapes[] = {
    {"0.6B kvq", 4096, 1024},  {"0.6B o", 1024, 2048},   {"0.6B gate|up", 6144, 1024}, {"0.6B down", 1024, 3072},
    {"4B kvq", 6144, 2560},    {"4B o", 2560, 4096},     {"4B gate|up", 19456, 2560},  {"4B down", 2560, 9728},
    {"8B kvq", 6144, 4096},    {"8B o", 4096, 4096},     {"8B gate|up", 24576, 4096},  {"8B down", 4096, 12288},
};

std::string describe(const cuda::CublasLtApi& lt, const cublasLtMatmulAlgo_t& algo) {
  // Each attribute in its own size (asked first: a size that does not match is refused), little-endian.
  auto attr = [&](cublasLtMatmulAlgoConfigAttributes_t a) -> long long {
    size_t size = 0;
    uint64_t v = 0;
    if (lt.algo_config_get(&algo, a, nullptr, 0, &size) != CUBLAS_STATUS_SUCCESS || size == 0 || size > sizeof(v) ||
        lt.algo_config_get(&algo, a, &v, size, &size) != CUBLAS_STATUS_SUCCESS)
      return -1;
    return static_cast<long long>(v);
  };
  char buf[160];
  std::snprintf(buf, sizeof(buf), "id %lld tile %lld stages %lld splitk %lld red %lld swizzle %lld cluster %lld",
                attr(CUBLASLT_ALGO_CONFIG_ID), attr(CUBLASLT_ALGO_CONFIG_TILE_ID), attr(CUBLASLT_ALGO_CONFIG_STAGES_ID),
                attr(CUBLASLT_ALGO_CONFIG_SPLITK_NUM), attr(CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
                attr(CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING), attr(CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
  return buf;
}

// Seconds per call of `run` as a recorded graph of `calls` calls replays it, the best of `replays` replays after a
// warm one: the host's launch cost (~10 µs for cublasGemmEx, more than a query's kernels take) stays out, as it does
// for the engine's query graphs.
template <typename F>
double replay_seconds(F run, cudaStream_t stream, int calls, int replays) {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "capture");
  for (int i = 0; i < calls; ++i) run();
  check_cuda(cudaStreamEndCapture(stream, &graph), "capture end");
  check_cuda(cudaGraphInstantiate(&exec, graph, 0), "graph instantiate");
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  check_cuda(cudaGraphLaunch(exec, stream), "graph warm-up");
  float best = 1e30f;
  for (int r = 0; r < replays; ++r) {
    cudaEventRecord(a, stream);
    check_cuda(cudaGraphLaunch(exec, stream), "graph launch");
    cudaEventRecord(b, stream);
    check_cuda(cudaEventSynchronize(b), "timed calls");
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    best = std::min(best, ms);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return best / 1e3 / calls;
}

// Seconds per call of `run`: enough calls for ~30 ms (one live call, timed, says how many), replayed once.
template <typename F>
double time_calls(F run, cudaStream_t stream) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  run();
  check_cuda(cudaStreamSynchronize(stream), "warm-up");
  cudaEventRecord(a, stream);
  run();
  cudaEventRecord(b, stream);
  cudaEventSynchronize(b);
  float once_ms = 0;
  cudaEventElapsedTime(&once_ms, a, b);
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return replay_seconds(run, stream, std::clamp(static_cast<int>(30.0 / std::max(once_ms, 0.001f)), 3, 2000), 1);
}

// Every configuration cuBLASLt accepts without a workspace and without split-K, beyond the heuristic's few:
// each algorithm id × each tile × each stage count it lists × cluster shapes up to 4 × 4 (CTA swizzling and
// custom options at their defaults), checked by cublasLtMatmulAlgoCheck.
std::vector<cublasLtMatmulAlgo_t> all_configs(const cuda::CublasLtApi& lt, cublasLtHandle_t lh,
                                              cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t la,
                                              cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t ld, int* checked) {
  std::vector<cublasLtMatmulAlgo_t> out;
  int ids[512], count = 0;
  *checked = 0;
  if (lt.algo_get_ids(lh, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, 512, ids,
                      &count) != CUBLAS_STATUS_SUCCESS)
    return out;
  auto listed = [&](const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t what) {
    size_t size = 0;
    std::vector<uint32_t> v;
    if (lt.algo_cap_get(&algo, what, nullptr, 0, &size) == CUBLAS_STATUS_SUCCESS && size >= sizeof(uint32_t)) {
      v.resize(size / sizeof(uint32_t));
      if (lt.algo_cap_get(&algo, what, v.data(), v.size() * sizeof(uint32_t), &size) != CUBLAS_STATUS_SUCCESS)
        v.clear();
    }
    if (v.empty()) v.push_back(0);  // "undefined": the algorithm's own choice
    return v;
  };
  for (int i = 0; i < count; ++i) {
    cublasLtMatmulAlgo_t algo;
    if (lt.algo_init(lh, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, CUDA_R_16BF, ids[i],
                     &algo) != CUBLAS_STATUS_SUCCESS)
      continue;
    for (uint32_t tile : listed(algo, CUBLASLT_ALGO_CAP_TILE_IDS))
      for (uint32_t stages : listed(algo, CUBLASLT_ALGO_CAP_STAGES_IDS))
        for (uint16_t cluster = 0; cluster <= CUBLASLT_CLUSTER_SHAPE_4x4x1; cluster += cluster == 0 ? 2 : 1) {
        cublasLtMatmulAlgo_t a = algo;
        const int32_t one = 1;
        if (lt.algo_config_set(&a, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof(tile)) != CUBLAS_STATUS_SUCCESS ||
            lt.algo_config_set(&a, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages, sizeof(stages)) != CUBLAS_STATUS_SUCCESS ||
            lt.algo_config_set(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &one, sizeof(one)) != CUBLAS_STATUS_SUCCESS ||
            lt.algo_config_set(&a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID, &cluster, sizeof(cluster)) !=
                CUBLAS_STATUS_SUCCESS)
          continue;
        ++*checked;
        cublasLtMatmulHeuristicResult_t result{};
        if (lt.algo_check(lh, desc, la, lb, ld, ld, &a, &result) == CUBLAS_STATUS_SUCCESS && result.workspaceSize == 0)
          out.push_back(a);
      }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // Usage: gemm_algo_bench [rows, comma separated] [shape names, comma separated]
  //                        [max workspace MiB to also try (default 0)]
  //                        [search: also every split-K-free configuration, all_configs above]
  const std::vector<int> ms = argc > 1 ? embedserve::bench::comma_list(argv[1])
                                        : std::vector<int>{16, 64, 256, 1024, 4096, 16384};
  const std::string filter = argc > 2 ? argv[2] : "";
  const size_t max_workspace_mib = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 0;
  const bool search = argc > 4 && std::string(argv[4]) == "search";
  const int big = 16384;
  const char* path = std::getenv("EMBEDSERVE_CUBLAS_PATH");
  auto api_or = cuda::open_cublas(path ? path : "");
  check(api_or.status(), "cuBLAS");
  const cuda::CublasApi api = *api_or;
  auto lt_or = cuda::open_cublas_lt(api);
  check(lt_or.status(), "cuBLASLt");
  const cuda::CublasLtApi lt = *lt_or;
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cublasHandle_t h;
  check_blas(api.create(&h), "cublasCreate");
  check_blas(api.set_stream(h, stream), "cublasSetStream");
  check_blas(api.set_workspace(h, nullptr, 0), "cublasSetWorkspace");  // as the engine: no workspace
  cublasLtHandle_t lh;
  check_blas(lt.create(&lh), "cublasLtCreate");
  const size_t lt_workspace_bytes = max_workspace_mib << 20;
  void* lt_workspace = nullptr;
  if (lt_workspace_bytes) check_cuda(cudaMalloc(&lt_workspace, lt_workspace_bytes), "workspace");
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("%s, cuBLAS %s\n", prop.name, api.path.c_str());

  if (search) {  // the floor under a kernel of ours that keeps cuBLAS's order: one product's latency
    for (int warps : {1, 4, 8})
      for (int chains : {1, 2, 4})
        std::printf("mma.sync m16n8k16 chain: %d warp(s), %d chain(s) each: %.1f cycles a step\n", warps, chains,
                    embedserve::bench::probe_mma_chain_cycles(4096, chains, warps));
  }
  for (const Shape& shape : kShapes) {
    bool wanted = filter.empty();  // the filter: names or parts of names, comma separated
    for (size_t at = 0; !wanted && at <= filter.size();) {
      const size_t comma = std::min(filter.find(',', at), filter.size());
      wanted = std::string(shape.name).find(filter.substr(at, comma - at)) != std::string::npos;
      at = comma + 1;
    }
    if (!wanted) continue;
    const int n = shape.n, k = shape.k;
    void *w, *x, *y_ref, *y;
    check_cuda(cudaMalloc(&w, size_t(n) * k * 2), "w");
    check_cuda(cudaMalloc(&x, size_t(big) * k * 2), "x");
    check_cuda(cudaMalloc(&y_ref, size_t(big) * n * 2), "y_ref");
    check_cuda(cudaMalloc(&y, size_t(big) * n * 2), "y");
    const auto hw = random_bf16(size_t(n) * k, n + k), hx = random_bf16(size_t(big) * k, 7 * k + 1);
    check_cuda(cudaMemcpy(w, hw.data(), hw.size() * 2, cudaMemcpyHostToDevice), "w upload");
    check_cuda(cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice), "x upload");
    const float alpha = 1.0f, beta = 0.0f;  // cuBLASLt's scales below
    // The engine's own call (ops/cuda/linear_cuda.h): cublasGemmEx, column-major yᵀ [n, m] = w [k, n]ᵀ · xᵀ [k, m].
    auto gemm_ex = [&](void* out, int m) {
      check(cuda::linear(api, h, static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(w),
                         static_cast<__nv_bfloat16*>(out), m, n, k),
            "cublasGemmEx");
    };
    gemm_ex(y_ref, big);
    check_cuda(cudaStreamSynchronize(stream), "reference");
    std::vector<uint16_t> ref(size_t(big) * n), got(size_t(big) * n);
    check_cuda(cudaMemcpy(ref.data(), y_ref, ref.size() * 2, cudaMemcpyDeviceToHost), "reference download");
    auto same_bits = [&](int m) {
      check_cuda(cudaStreamSynchronize(stream), "run");
      check_cuda(cudaMemcpy(got.data(), y, size_t(m) * n * 2, cudaMemcpyDeviceToHost), "download");
      return std::memcmp(got.data(), ref.data(), size_t(m) * n * 2) == 0;
    };
    for (int m : ms) {
      const double bytes = 2.0 * (double(n) * k + double(m) * k + double(m) * n), flops = 2.0 * m * n * k;
      // NaN-poisoned on the GEMMs' stream: a kernel that writes nothing cannot pass.
      check_cuda(cudaMemsetAsync(y, 0xff, size_t(m) * n * 2, stream), "poison");
      gemm_ex(y, m);
      const bool ex_same = same_bits(m);
      const double ex_s = time_calls([&] { gemm_ex(y, m); }, stream);
      std::printf("\n%-13s n %5d k %5d m %5d: cublasGemmEx %8.2f us  %6.0f GB/s  %5.0f TFLOP/s  bits %s\n", shape.name,
                  n, k, m, ex_s * 1e6, bytes / ex_s / 1e9, flops / ex_s / 1e12, ex_same ? "same" : "DIFFER");
      cublasLtMatmulDesc_t desc;
      cublasLtMatrixLayout_t la, lb, ld;
      check_blas(lt.desc_create(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "desc");
      const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
      lt.desc_set(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
      lt.desc_set(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
      check_blas(lt.layout_create(&la, CUDA_R_16BF, k, n, k), "layout a");
      check_blas(lt.layout_create(&lb, CUDA_R_16BF, k, m, k), "layout b");
      check_blas(lt.layout_create(&ld, CUDA_R_16BF, n, m, n), "layout d");
      // y = x·wᵀ by one cuBLASLt algorithm, with up to `ws` bytes of workspace.
      auto lt_matmul = [&](const cublasLtMatmulAlgo_t& algo, size_t ws) {
        return lt.matmul(lh, desc, &alpha, w, la, x, lb, &beta, y, ld, y, ld, &algo, lt_workspace, ws, stream);
      };
      std::vector<size_t> workspaces = {0};
      if (lt_workspace_bytes) workspaces.push_back(lt_workspace_bytes);
      for (size_t ws : workspaces) {
        cublasLtMatmulPreference_t pref;
        lt.preference_create(&pref);
        const uint64_t ws64 = ws;
        lt.preference_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws64, sizeof(ws64));
        cublasLtMatmulHeuristicResult_t results[48];
        int found = 0;
        lt.heuristic(lh, desc, la, lb, ld, ld, pref, 48, results, &found);
        lt.preference_destroy(pref);
        struct Row {
          double s;
          bool same;
          std::string what;
        };
        std::vector<Row> rows;
        for (int i = 0; i < found; ++i) {
          if (results[i].state != CUBLAS_STATUS_SUCCESS || results[i].workspaceSize > ws) continue;
          auto run = [&] { check_blas(lt_matmul(results[i].algo, ws), "cublasLtMatmul"); };
          check_cuda(cudaMemsetAsync(y, 0xff, size_t(m) * n * 2, stream), "poison");
          run();
          check_cuda(cudaStreamSynchronize(stream), "algo run");
          const bool same = same_bits(m);
          char rank[48];
          std::snprintf(rank, sizeof(rank), "heuristic #%d, workspace %zu: ", i + 1, results[i].workspaceSize);
          rows.push_back({time_calls(run, stream), same, rank + describe(lt, results[i].algo)});
        }
        std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.s < b.s; });
        std::printf("  cuBLASLt, workspace up to %zu MiB: %d algorithms\n", ws >> 20, found);
        for (const Row& r : rows)
          std::printf("    %8.2f us  %6.0f GB/s  %5.0f TFLOP/s  %5.2fx  bits %-6s  %s\n", r.s * 1e6, bytes / r.s / 1e9,
                      flops / r.s / 1e12, ex_s / r.s, r.same ? "same" : "DIFFER", r.what.c_str());
      }
      if (search) {
        int checked = 0;
        const auto configs = all_configs(lt, lh, desc, la, lb, ld, &checked);
        std::vector<std::pair<double, size_t>> quick;
        for (size_t i = 0; i < configs.size(); ++i) {
          auto run = [&] { check_blas(lt_matmul(configs[i], 0), "cublasLtMatmul"); };
          if (lt_matmul(configs[i], 0) != CUBLAS_STATUS_SUCCESS || cudaStreamSynchronize(stream) != cudaSuccess) {
            cudaGetLastError();
            continue;
          }
          quick.push_back({replay_seconds(run, stream, 20, 3), i});  // a quick figure to rank by; the fastest re-timed
        }
        std::sort(quick.begin(), quick.end());
        std::printf("  every configuration: %d configured, %zu accepted without workspace or split-K, %zu ran; "
                    "the fastest, re-timed:\n", checked, configs.size(), quick.size());
        for (size_t j = 0; j < std::min<size_t>(quick.size(), 10); ++j) {
          const cublasLtMatmulAlgo_t& algo = configs[quick[j].second];
          auto run = [&] { check_blas(lt_matmul(algo, 0), "cublasLtMatmul"); };
          check_cuda(cudaMemsetAsync(y, 0xff, size_t(m) * n * 2, stream), "poison");
          run();
          const bool same = same_bits(m);
          const double t = time_calls(run, stream);
          std::printf("    %8.2f us  %6.0f GB/s  %5.2fx  bits %-6s  %s\n", t * 1e6, bytes / t / 1e9, ex_s / t,
                      same ? "same" : "DIFFER", describe(lt, algo).c_str());
        }
      }
      // Kernels of our own that sum k in the same order (gemm_bits_probe.h): do they give cuBLAS's bits?
      using Probe = cudaError_t (*)(const __nv_bfloat16*, const __nv_bfloat16*, __nv_bfloat16*, int, int, int,
                                    cudaStream_t);
      const std::pair<const char*, Probe> probes[] = {{"ours, mma.sync m16n8k16", embedserve::bench::probe_gemm_mma_sync},
                                                      {"ours, wgmma m64n64k16", embedserve::bench::probe_gemm_wgmma}};
      for (const auto& [name, probe] : probes) {
        const auto* xb = static_cast<const __nv_bfloat16*>(x);
        const auto* wb = static_cast<const __nv_bfloat16*>(w);
        auto* yb = static_cast<__nv_bfloat16*>(y);
        check_cuda(cudaMemsetAsync(y, 0xff, size_t(m) * n * 2, stream), "poison");
        const cudaError_t err = probe(xb, wb, yb, m, n, k, stream);
        if (err != cudaSuccess) {
          cudaGetLastError();
          std::printf("  %s: not run (%s)\n", name, cudaGetErrorString(err));
          continue;
        }
        const bool same = same_bits(m);
        const double s = time_calls([&] { probe(xb, wb, yb, m, n, k, stream); }, stream);
        std::printf("  %s: %8.2f us  bits %s\n", name, s * 1e6, same ? "same" : "DIFFER");
      }
      // The engine's kernel for a query's rows (ops/cuda/skinny_gemm_cuda.h), in each of its block sizes.
      for (int warps : {1, 2, 4}) {
        if (!cuda::skinny_gemm_fits(m, n, k, warps)) continue;
        const auto* xb = static_cast<const __nv_bfloat16*>(x);
        const auto* wb = static_cast<const __nv_bfloat16*>(w);
        auto* yb = static_cast<__nv_bfloat16*>(y);
        auto run = [&] { check_cuda(cuda::skinny_gemm(stream, xb, wb, yb, m, n, k, warps), "skinny_gemm"); };
        check_cuda(cudaMemsetAsync(y, 0xff, size_t(m) * n * 2, stream), "poison");
        run();
        const bool same = same_bits(m);
        const double s = time_calls(run, stream);
        std::printf("  skinny_gemm, %d warp(s) a block: %8.2f us  %6.0f GB/s  %5.2fx  bits %s\n", warps, s * 1e6,
                    bytes / s / 1e9, ex_s / s, same ? "same" : "DIFFER");
      }
      lt.layout_destroy(la);
      lt.layout_destroy(lb);
      lt.layout_destroy(ld);
      lt.desc_destroy(desc);
    }
    cudaFree(w), cudaFree(x), cudaFree(y_ref), cudaFree(y);
  }
  return 0;
}
