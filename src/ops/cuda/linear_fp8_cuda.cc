// Fp8Gemm: cuBLASLt FP8 plans per shape; per-token and per-channel scales as outer vectors, or a scaling kernel.
#include "ops/cuda/linear_fp8_cuda.h"

#include <climits>
#include <string>

#include "ops/cuda/fp8_cuda.h"

namespace embedserve::cuda {
namespace {

Status lt_status(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return Status();
  return internal_error(std::string(what) + " failed (cuBLAS status " + std::to_string(static_cast<int>(st)) + ")");
}

}  // namespace

StatusOr<std::unique_ptr<Fp8Gemm>> Fp8Gemm::create(const CublasApi& api, bool outer_vector_scales) {
  EMBEDSERVE_ASSIGN_OR_RETURN(CublasLtApi lt, open_cublas_lt(api));
  std::unique_ptr<Fp8Gemm> g(new Fp8Gemm(lt));
  EMBEDSERVE_RETURN_IF_ERROR(lt_status(lt.create(&g->handle_), "cublasLtCreate"));
  // Whether this cuBLASLt scales by outer vectors, asked once on a shape of the real models' kind (the heuristic
  // reads the scale pointers' alignment only, never their memory), so the start-up line can say which path runs.
  g->outer_vec_ = 0;
  if (!outer_vector_scales) return g;
  const auto aligned = reinterpret_cast<const void*>(uintptr_t{256});
  StatusOr<Plan> probe = g->make_plan(16, 1024, 1024, true, aligned, aligned);
  g->outer_vec_ = probe.ok() ? 1 : 0;
  if (probe.ok()) g->destroy(*probe);
  return g;
}

Fp8Gemm::~Fp8Gemm() {
  for (auto& [shape, plan] : plans_) destroy(plan);
  if (handle_) lt_.destroy(handle_);
}

void Fp8Gemm::destroy(Plan& p) {
  if (p.desc) lt_.desc_destroy(p.desc);
  for (cublasLtMatrixLayout_t l : {p.a, p.b, p.d})
    if (l) lt_.layout_destroy(l);
  p = Plan{};
}

StatusOr<Fp8Gemm::Plan> Fp8Gemm::make_plan(int64_t m, int64_t n, int64_t k, bool outer_vec, const void* scale_a,
                                           const void* scale_b) {
  Plan p;
  auto fail = [&](Status st) {
    destroy(p);
    return st;
  };
  Status st = lt_status(lt_.desc_create(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  // Column-major view of row-major y = x·wᵀ: yᵀ [n, m] = w [k, n]ᵀ · xᵀ [k, m]; A = w transposed, B = x.
  const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  if (st.ok()) st = lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)), "TRANSA");
  if (st.ok()) st = lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)), "TRANSB");
  // Fast accumulation off: Hopper's FP8 MMAs keep partial sums in reduced precision, and cuBLASLt then promotes
  // them to f32 every few k-steps; on, the sums of 10k-long rows lose accuracy the embeddings would carry.
  const int8_t fast_accum = 0;
  if (st.ok()) st = lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast_accum, sizeof(fast_accum)), "FAST_ACCUM");
  if (outer_vec) {
    // A's scales per row of op(A) (= output channel: w's rows), B's per column of op(B) (= token).
    const int32_t mode = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
    if (st.ok()) st = lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &mode, sizeof(mode)), "A_SCALE_MODE");
    if (st.ok()) st = lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &mode, sizeof(mode)), "B_SCALE_MODE");
    if (st.ok()) st = lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &scale_a, sizeof(scale_a)), "A_SCALE_POINTER");
    if (st.ok()) st = lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &scale_b, sizeof(scale_b)), "B_SCALE_POINTER");
  }
  if (st.ok()) st = lt_status(lt_.layout_create(&p.a, CUDA_R_8F_E4M3, static_cast<uint64_t>(k), static_cast<uint64_t>(n), k), "layout A");
  if (st.ok()) st = lt_status(lt_.layout_create(&p.b, CUDA_R_8F_E4M3, static_cast<uint64_t>(k), static_cast<uint64_t>(m), k), "layout B");
  if (st.ok()) st = lt_status(lt_.layout_create(&p.d, CUDA_R_16BF, static_cast<uint64_t>(n), static_cast<uint64_t>(m), n), "layout D");
  if (!st.ok()) return fail(st);
  // No workspace: no split-K, whose reduction order would depend on m (see the bf16 path in ARCHITECTURE.md).
  cublasLtMatmulPreference_t pref = nullptr;
  st = lt_status(lt_.preference_create(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t workspace = 0;
  if (st.ok())
    st = lt_status(lt_.preference_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)),
                   "MAX_WORKSPACE_BYTES");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  if (st.ok()) {
    const cublasStatus_t h = lt_.heuristic(handle_, p.desc, p.a, p.b, p.d, p.d, pref, 1, &result, &found);
    if (h != CUBLAS_STATUS_SUCCESS || found == 0)
      st = unimplemented("cuBLASLt has no FP8 GEMM for m=" + std::to_string(m) + " n=" + std::to_string(n) +
                         " k=" + std::to_string(k) + (outer_vec ? " with outer-vector scales" : "") +
                         " (cuBLAS status " + std::to_string(static_cast<int>(h)) + ")");
  }
  if (pref) lt_.preference_destroy(pref);
  if (!st.ok()) return fail(st);
  p.algo = result.algo;
  p.outer_vec = outer_vec;
  return p;
}

Status Fp8Gemm::run(cudaStream_t stream, const uint8_t* xq, const float* x_scales, const uint8_t* wq,
                    const float* w_scales, __nv_bfloat16* y, int64_t m, int64_t n, int64_t k) {
  if (m < 0 || n <= 0 || k <= 0 || m > INT_MAX || n > INT_MAX || k > INT_MAX || n % 16 != 0 || k % 16 != 0)
    return invalid_argument("FP8 linear: cuBLASLt needs n and k multiples of 16, got m=" + std::to_string(m) +
                            " n=" + std::to_string(n) + " k=" + std::to_string(k));
  if (m == 0) return Status();
  const auto key = std::make_tuple(m, n, k);
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    // Outer-vector scales where this cuBLASLt offers them (create() asked); else unit scales and a scaling kernel
    // after. A shape the mode lacks falls back alone, which keeps it correct though its rows then round once more
    // (to bf16 before the scales).
    StatusOr<Plan> plan = internal_error("no plan");
    if (outer_vec_ == 1) plan = make_plan(m, n, k, true, w_scales, x_scales);
    if (!plan.ok()) plan = make_plan(m, n, k, false, nullptr, nullptr);
    if (!plan.ok()) return plan.status();
    it = plans_.emplace(key, *plan).first;
  }
  Plan& p = it->second;
  if (p.outer_vec) {
    const void* a = w_scales;
    const void* b = x_scales;
    EMBEDSERVE_RETURN_IF_ERROR(lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &a, sizeof(a)), "A_SCALE_POINTER"));
    EMBEDSERVE_RETURN_IF_ERROR(lt_status(lt_.desc_set(p.desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &b, sizeof(b)), "B_SCALE_POINTER"));
  }
  const float alpha = 1.0f, beta = 0.0f;
  EMBEDSERVE_RETURN_IF_ERROR(lt_status(lt_.matmul(handle_, p.desc, &alpha, wq, p.a, xq, p.b, &beta, y, p.d, y, p.d,
                                                  &p.algo, nullptr, 0, stream),
                                       "cublasLtMatmul (FP8)"));
  if (!p.outer_vec) return scale_rows_columns(y, m, n, x_scales, w_scales, stream);
  return Status();
}

}  // namespace embedserve::cuda
