// The op suite: every op of src/ops on every backend present (CPU f32; CUDA f32 and bf16 where a GPU is visible)
// against the one double-precision reference of op_reference.h — seeded inputs rounded to the backend's dtype, odd
// sizes, outputs poisoned with NaN, a tolerance counted from each op's roundings — and the bitwise promises (fused
// ops equal their composition; a sequence's rows do not depend on its batch).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "op_reference.h"
#include "op_suite_util.h"
#include "ops/add.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/gather_rows.h"
#include "ops/linear.h"
#include "ops/pool.h"
#include "ops/rms_norm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"

namespace embedserve::testing {
namespace {

constexpr float kEps = 1e-6f;
using Shape = std::pair<int64_t, int64_t>;

// The rows of one attention call: sequences of `lengths` laid end to end, every row a query, or (pooled) only each
// sequence's last row — the last layer under last-token pooling, one query row per sequence at its last position.
struct AttentionRows {
  std::vector<int32_t> kv_offsets = {0}, q_offsets = {0}, q_positions;
};

AttentionRows attention_rows(const std::vector<int32_t>& lengths, bool pooled) {
  AttentionRows r;
  for (int32_t len : lengths) {
    r.kv_offsets.push_back(r.kv_offsets.back() + len);
    for (int32_t p = pooled ? len - 1 : 0; p < len; ++p) r.q_positions.push_back(p);
    r.q_offsets.push_back(static_cast<int32_t>(r.q_positions.size()));
  }
  return r;
}

class OpSuite : public OpTest {
 protected:
  // Runs ops::attention over `rows` on q, k, v (values of the backend's dtype) and returns its output.
  std::vector<float> attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                               const ops::AttentionShape& shape, const AttentionRows& rows) const;
  // Runs linear on a sequence alone and inside batches; compares its rows bit for bit, or within the GEMM's bound.
  void expect_linear_rows_independent(bool bitwise) const;
  // How far attention's output may be from the float64 reference over sequences of up to `longest` rows.
  double attention_tolerance(int head_dim, int32_t longest) const;
  // Runs attention on seeded inputs over sequences of `lengths` and compares it with the reference.
  void expect_attention(const ops::AttentionShape& shape, const std::vector<int32_t>& lengths, bool pooled,
                        uint32_t seed) const;
  // For every head size: the rows of one sequence of `len` tokens from position `first` on, sent alone as a chunk
  // that continues the sequence sends them (over all of its keys), give the bits of those rows in the whole call.
  void expect_chunk_matches_whole(int32_t len, int32_t first, uint32_t seed) const;
};

std::vector<float> OpSuite::attention(const std::vector<float>& q, const std::vector<float>& k,
                                      const std::vector<float>& v, const ops::AttentionShape& shape,
                                      const AttentionRows& rows) const {
  const int64_t n_q = rows.q_offsets.back(), n_kv = rows.kv_offsets.back();
  const int64_t q_dim = int64_t{shape.heads} * shape.head_dim, kv_dim = int64_t{shape.kv_heads} * shape.head_dim;
  DeviceTensor dq = tensor(n_q, q_dim, q), dk = tensor(n_kv, kv_dim, k), dv = tensor(n_kv, kv_dim, v);
  DeviceTensor out = tensor(n_q, q_dim);
  StagedIndices idx(ctx());
  const size_t q_off = idx.add(rows.q_offsets), q_pos = idx.add(rows.q_positions), kv_off = idx.add(rows.kv_offsets);
  const size_t plan = idx.add(ops::attention_plan(ctx(), rows.q_offsets));
  idx.upload();
  check(ops::attention(ctx(), *dq, *dk, *dv, *out, shape, {idx[q_off], idx[q_pos]}, idx[kv_off], idx[plan]),
        "ops::attention");
  return out.download();
}

// Rows [begin, end) of a row-major matrix with `cols` columns.
std::vector<float> rows_of(const std::vector<float>& m, int64_t cols, int64_t begin, int64_t end) {
  return {m.begin() + begin * cols, m.begin() + end * cols};
}

TEST_P(OpSuite, Add) {
  // x = T(x + y): the f32 sum (one f32 rounding), rounded once to T.
  const double tol = tolerance(dtype(), 1, 1);
  uint32_t seed = 1;
  // 130 × 301 crosses the CPU's 16k-element chunks; 7 × 64 and 3 × 4096 take CUDA's 16-byte path.
  for (auto [rows, cols] : {Shape{1, 1}, {7, 64}, {33, 13}, {130, 301}, {3, 4096}}) {
    SCOPED_TRACE(::testing::Message() << "x, y [" << rows << ", " << cols << "]");
    const auto x0 = random(rows * cols, seed++), y0 = random(rows * cols, seed++, 0.01f);
    DeviceTensor x = tensor(rows, cols, x0), y = tensor(rows, cols, y0);
    ASSERT_TRUE(succeeded(ops::add(ctx(), *x, *y)));
    EXPECT_TRUE(near(x.download(), reference::add(x0, y0), tol));
  }
}

TEST_P(OpSuite, RmsNorm) {
  uint32_t seed = 10;
  // cols 64 and 4096 (the 8B's hidden size, more columns than a block has threads): CUDA's 16-byte bf16 path.
  for (auto [rows, cols] : {Shape{1, 1}, {7, 13}, {33, 64}, {130, 301}, {3, 4096}}) {
    SCOPED_TRACE(::testing::Message() << "x [" << rows << ", " << cols << "]");
    // out = T(w · T(x · r)), r = rsqrt(mean(x²) + eps) in f32: two roundings to T (the normalised value, then its
    // product with the weight); in f32 the sum of squares (γ_cols), the mean and eps (2) and rsqrt (≤ 2 ulp: 4),
    // whose error halves through the square root — cols + 8 units.
    const double tol = tolerance(dtype(), 2, double(cols) + 8);
    auto x0 = random(rows * cols, seed++, 3.0f);
    if (rows > 1) std::fill(x0.begin() + cols, x0.begin() + 2 * cols, 0.0f);  // eps keeps a zero row finite: 0
    const auto w0 = random(cols, seed++, 0.1f, 1.0f);
    DeviceTensor x = tensor(rows, cols, x0), w = tensor(1, cols, w0), out = tensor(rows, cols);
    ASSERT_TRUE(succeeded(ops::rms_norm(ctx(), *x, *w, kEps, *out)));
    const std::vector<float> got = out.download();
    EXPECT_TRUE(near(got, reference::rms_norm(x0, w0, kEps), tol));
    // In place (out = x), as the model's final norm runs: the same bits.
    ASSERT_TRUE(succeeded(ops::rms_norm(ctx(), *x, *w, kEps, *x)));
    EXPECT_TRUE(same_bits(x.download(), got));
  }
}

TEST_P(OpSuite, RmsNormOfStridedRows) {
  // rms_norm.h lets x and out be strided views (they share a stride). The CPU normalises the first cols of each row
  // and leaves the gap (another tensor's columns) alone; CUDA's kernels take dense rows only and say so.
  const int64_t rows = 7, cols = 37, stride = 41;
  const auto x0 = random(rows * stride, 20, 3.0f), w0 = random(cols, 21, 0.1f, 1.0f);
  DeviceTensor x = tensor(rows, stride, x0), w = tensor(1, cols, w0), out = tensor(rows, stride);
  const ops::Tensor xv{x->data, dtype(), rows, cols, stride}, ov{out->data, dtype(), rows, cols, stride};
  const Status st = ops::rms_norm(ctx(), xv, *w, kEps, ov);
  const std::vector<float> got = out.download();
  if (!on_cpu()) {
    EXPECT_EQ(st.code(), ErrorCode::kInternal) << st.to_string();
    EXPECT_NE(st.message().find("rms_norm: x must be dense"), std::string::npos) << st.to_string();
    EXPECT_TRUE(untouched(got));
    return;
  }
  ASSERT_TRUE(succeeded(st));
  std::vector<float> x_rows, got_rows, gaps;
  for (int64_t r = 0; r < rows; ++r) {
    x_rows.insert(x_rows.end(), x0.begin() + r * stride, x0.begin() + r * stride + cols);
    got_rows.insert(got_rows.end(), got.begin() + r * stride, got.begin() + r * stride + cols);
    gaps.insert(gaps.end(), got.begin() + r * stride + cols, got.begin() + (r + 1) * stride);
  }
  EXPECT_TRUE(near(got_rows, reference::rms_norm(x_rows, w0, kEps), tolerance(dtype(), 2, cols + 8)));
  EXPECT_TRUE(untouched(gaps));
}

TEST_P(OpSuite, AddRmsNorm) {
  // residual += delta, then out = rms_norm(residual). A backend may fuse the two, but the model's numbers must not
  // move: the fused op equals add then rms_norm bit for bit — also with out aliasing delta, as the decoder layer
  // calls it (ops::add_rms_norm(ctx, x, h, w, eps, h)).
  // On CUDA bf16, rows of up to 4,096 (1,024 the 0.6B's, 2,560 the 4B's: a second pack for some threads) keep
  // each thread's packs in registers; 8,192 takes the kernel that re-reads the row.
  uint32_t seed = 30;
  for (auto [rows, cols] : {Shape{1, 1}, {7, 64}, {33, 301}, {4, 1024}, {5, 2560}, {3, 4096}, {2, 8192}}) {
    SCOPED_TRACE(::testing::Message() << "residual, delta [" << rows << ", " << cols << "]");
    const auto r0 = random(rows * cols, seed++, 3.0f), d0 = random(rows * cols, seed++);
    const auto w0 = random(cols, seed++, 0.1f, 1.0f);
    const DeviceTensor w = tensor(1, cols, w0);

    DeviceTensor r1 = tensor(rows, cols, r0), d1 = tensor(rows, cols, d0), out1 = tensor(rows, cols);
    ASSERT_TRUE(succeeded(ops::add(ctx(), *r1, *d1)));
    ASSERT_TRUE(succeeded(ops::rms_norm(ctx(), *r1, *w, kEps, *out1)));
    const std::vector<float> residual = r1.download(), normed = out1.download();

    DeviceTensor r2 = tensor(rows, cols, r0), d2 = tensor(rows, cols, d0), out2 = tensor(rows, cols);
    ASSERT_TRUE(succeeded(ops::add_rms_norm(ctx(), *r2, *d2, *w, kEps, *out2)));
    EXPECT_TRUE(same_bits(r2.download(), residual)) << "residual, fused";
    EXPECT_TRUE(same_bits(out2.download(), normed)) << "out, fused";

    DeviceTensor r3 = tensor(rows, cols, r0), d3 = tensor(rows, cols, d0);
    ASSERT_TRUE(succeeded(ops::add_rms_norm(ctx(), *r3, *d3, *w, kEps, *d3)));
    EXPECT_TRUE(same_bits(r3.download(), residual)) << "residual, fused with out = delta";
    EXPECT_TRUE(same_bits(d3.download(), normed)) << "out, fused with out = delta";

    // Against the reference: rms_norm's bound, plus the residual's rounding to T, which reaches the output
    // through both the element and the row's norm (2 more roundings, 1 more f32 unit).
    EXPECT_TRUE(near(normed, reference::rms_norm(reference::add(r0, d0), w0, kEps),
                     tolerance(dtype(), 4, double(cols) + 9)));
  }
}

TEST_P(OpSuite, QkNormRope) {
  struct Case {
    int64_t rows;
    int heads, head_dim;
    float theta;
  };
  uint32_t seed = 40;
  for (const Case& c : {Case{1, 1, 2, 1e4f}, {7, 3, 10, 1e4f}, {33, 5, 64, 1e6f}, {130, 2, 128, 1e6f}}) {
    SCOPED_TRACE(::testing::Message() << "x [" << c.rows << ", " << c.heads << " × " << c.head_dim << "], theta "
                                      << c.theta);
    const int hd = c.head_dim;
    // Positions 0 (the identity rotation) to 40959: there f32 angles are off the exact ones by up to 2e-3 rad,
    // so a backend that does not round the angle as transformers does fails by far more than the tolerance.
    std::vector<int32_t> positions(static_cast<size_t>(c.rows));
    for (int64_t r = 1; r < c.rows; ++r) positions[r] = static_cast<int32_t>((r * 4099 + 7) % 40960);
    // Qwen3RotaryEmbedding's inv_freq, every step in f32 (as src/model/qwen3.cc computes it).
    std::vector<float> inv_freq(static_cast<size_t>(hd / 2));
    for (int i = 0; i < hd / 2; ++i) inv_freq[i] = 1.0f / std::pow(c.theta, float(2 * i) / float(hd));
    const auto x0 = random(c.rows * c.heads * hd, seed++, 2.0f), w0 = random(hd, seed++, 0.1f, 1.0f);

    StagedIndices idx(ctx());
    const size_t pos = idx.add(positions);
    idx.upload();
    auto freq = ops::upload_f32(ctx(), inv_freq, "inv_freq");
    check(freq.status(), "uploading inv_freq");
    auto scratch = ops::Buffer::allocate(ctx(), ops::rotary_table_bytes(ctx(), c.rows, hd), "rotary tables");
    check(scratch.status(), "allocating the rotary tables");
    auto table = ops::rotary_table(ctx(), idx[pos], freq->tensor, hd, scratch->data());
    ASSERT_TRUE(succeeded(table.status()));
    DeviceTensor x = tensor(c.rows, c.heads * hd, x0), w = tensor(1, hd, w0);
    ASSERT_TRUE(succeeded(ops::qk_norm_rope(ctx(), *x, *w, kEps, *table)));
    // rms_norm's 2 roundings to T reach each rotated product; cos and sin are rounded to T (1), each product (1)
    // and their sum (1): 4 on each of the two products, whose magnitudes sum to at most √2 of the pair's norm,
    // and 1 on the sum — 4√2 + 1 < 7. In f32, rms_norm's hd + 8 units and cos/sin within 2 ulp (4).
    EXPECT_TRUE(near(x.download(), reference::qk_norm_rope(x0, w0, kEps, positions, inv_freq),
                     tolerance(dtype(), 7, hd + 12)));
  }
}

TEST_P(OpSuite, QkNormRopeOfKAndQTogether) {
  // The model's k and q: column views of one fused projection's output [n, k | v | q], normalised and rotated in
  // one call — the same bits as one call per tensor on dense copies.
  const int64_t rows = 37;
  const int hd = 128, kv_heads = 2, heads = 4;
  const int64_t cols = int64_t{2 * kv_heads + heads} * hd;
  std::vector<int32_t> positions(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) positions[r] = static_cast<int32_t>(r * 31 % 900);
  std::vector<float> inv_freq(static_cast<size_t>(hd / 2));
  for (int i = 0; i < hd / 2; ++i) inv_freq[i] = 1.0f / std::pow(1e6f, float(2 * i) / float(hd));
  const auto fused0 = random(rows * cols, 300, 2.0f), kw0 = random(hd, 301, 0.1f, 1.0f), qw0 = random(hd, 302, 0.1f, 1.0f);
  StagedIndices idx(ctx());
  const size_t pos = idx.add(positions);
  idx.upload();
  auto freq = ops::upload_f32(ctx(), inv_freq, "inv_freq");
  check(freq.status(), "uploading inv_freq");
  auto scratch = ops::Buffer::allocate(ctx(), ops::rotary_table_bytes(ctx(), rows, hd), "rotary tables");
  check(scratch.status(), "allocating the rotary tables");
  auto table = ops::rotary_table(ctx(), idx[pos], freq->tensor, hd, scratch->data());
  ASSERT_TRUE(succeeded(table.status()));
  DeviceTensor fused = tensor(rows, cols, fused0), kw = tensor(1, hd, kw0), qw = tensor(1, hd, qw0);
  const int64_t k_cols = int64_t{kv_heads} * hd, q_begin = 2 * k_cols, q_cols = int64_t{heads} * hd;
  ASSERT_TRUE(succeeded(ops::qk_norm_rope(ctx(), fused->columns(0, k_cols), *kw, fused->columns(q_begin, q_cols), *qw,
                                          kEps, *table)));
  std::vector<float> k0, q0;
  for (int64_t r = 0; r < rows; ++r) {
    k0.insert(k0.end(), fused0.begin() + r * cols, fused0.begin() + r * cols + k_cols);
    q0.insert(q0.end(), fused0.begin() + r * cols + q_begin, fused0.begin() + (r + 1) * cols);
  }
  DeviceTensor k = tensor(rows, k_cols, k0), q = tensor(rows, q_cols, q0);
  ASSERT_TRUE(succeeded(ops::qk_norm_rope(ctx(), *k, *kw, kEps, *table)));
  ASSERT_TRUE(succeeded(ops::qk_norm_rope(ctx(), *q, *qw, kEps, *table)));
  const std::vector<float> got = fused.download(), k1 = k.download(), q1 = q.download();
  std::vector<float> got_k, got_v, got_q, v0;
  for (int64_t r = 0; r < rows; ++r) {
    got_k.insert(got_k.end(), got.begin() + r * cols, got.begin() + r * cols + k_cols);
    got_v.insert(got_v.end(), got.begin() + r * cols + k_cols, got.begin() + r * cols + q_begin);
    v0.insert(v0.end(), fused0.begin() + r * cols + k_cols, fused0.begin() + r * cols + q_begin);
    got_q.insert(got_q.end(), got.begin() + r * cols + q_begin, got.begin() + (r + 1) * cols);
  }
  EXPECT_TRUE(same_bits(got_k, k1));
  EXPECT_TRUE(same_bits(got_q, q1));
  EXPECT_TRUE(same_bits(got_v, v0)) << "v, between k and q, is left alone";
}

TEST_P(OpSuite, Swiglu) {
  // out = T(T(silu(g)) · u) with silu(g) = g / (1 + e^-g) in f32: exp within 3 ulp (the CPU's exp_f32; CUDA's expf
  // within 2) counts 6, the sum and the quotient 1 each; the product with u 1; two roundings to T (the activation,
  // then the product).
  const double tol = tolerance(dtype(), 2, 10);
  uint32_t seed = 50;
  // d 64, 3072, 9728: CUDA's 16-byte path (the 0.6B's and the 4B's MLP widths, rows found by FastDivide)
  for (auto [n, d] : {Shape{1, 1}, {7, 37}, {33, 64}, {130, 77}, {5, 3072}, {41, 9728}}) {
    SCOPED_TRACE(::testing::Message() << "gate_up [" << n << ", 2 × " << d << "]");
    auto gu = random(n * 2 * d, seed++, 3.0f);
    if (d >= 2) {  // e^100 overflows f32: silu(-100) must come out ~0, silu(100) 100, neither NaN
      gu[0] = -100.0f;
      gu[1] = 100.0f;
    }
    DeviceTensor gate_up = tensor(n, 2 * d, gu), out = tensor(n, d);
    ASSERT_TRUE(succeeded(ops::swiglu(ctx(), *gate_up, *out)));
    EXPECT_TRUE(near(out.download(), reference::swiglu(gu, d), tol));
  }
}

TEST_P(OpSuite, Linear) {
  struct Case {
    int64_t m, n, k;
    std::vector<int32_t> row_groups;  // sequences: the CPU may run one GEMM per group
  };
  uint32_t seed = 60;
  // The last: a query's rows of a shape skinny_gemm takes (CUDA bf16 may choose it: ops/cuda/tuned_gemm.h).
  for (const Case& c : {Case{1, 1, 1, {0, 1}}, {7, 29, 67, {0, 7}}, {33, 64, 130, {0, 1, 8, 33}},
                        {130, 33, 257, {0, 33, 34, 130}}, {130, 97, 1000, {0, 130}}, {20, 128, 512, {0, 4, 20}}}) {
    SCOPED_TRACE(::testing::Message() << "x [" << c.m << ", " << c.k << "] · w [" << c.n << ", " << c.k << "]ᵀ, "
                                      << c.row_groups.size() - 1 << " row groups");
    const auto x0 = random(c.m * c.k, seed++), w0 = random_weights(c.n * c.k, seed++, 1.0f / std::sqrt(float(c.k)));
    DeviceTensor x = tensor(c.m, c.k, x0), w = weight_tensor(c.n, c.k, w0), y = tensor(c.m, c.n);
    StagedIndices idx(ctx());
    const size_t groups = idx.add(c.row_groups);
    idx.upload();
    ASSERT_TRUE(succeeded(ops::linear(ctx(), *x, *w, *y, idx[groups])));
    // Length-k dot products accumulated in f32 (OpenBLAS sgemm; cuBLAS with CUBLAS_COMPUTE_32F, no TF32 in f32;
    // the CPU's bf16-weight kernels): γ_k = k units. That bound is relative to Σ|xᵢwᵢ|, which on these zero-mean
    // inputs is ~√k·|Σxᵢwᵢ|, while the rounding errors add as a random walk (~√k units of a typical term), so k
    // units relative to ‖ref‖ holds with room. One rounding to T: of the output, or, with bf16 weights and f32
    // activations, of x to bf16 where the CPU's kernel multiplies in bf16 (AVX512-BF16; ~2^-8/√3 normwise).
    const DType rounded = weight_dtype() != dtype() ? weight_dtype() : dtype();
    EXPECT_TRUE(near(y.download(), reference::linear(x0, w0, c.k), tolerance(rounded, 1, double(c.k))));
  }
}

void OpSuite::expect_linear_rows_independent(bool bitwise) const {
  // A sequence's rows alone and inside batches of other sizes at other offsets (linear.h: the CPU runs one GEMM per
  // row group where its kernels are not row-independent; cuBLAS without a workspace is to round each row the same
  // at any m). Three products: a small one (per-group sgemm on every CPU), one past OpenBLAS's small-matrix limit
  // (n·k > 100³: one batch-wide sgemm where the kernels are row-independent), and one skinny_gemm takes (CUDA bf16
  // may run the sequence alone on it, and the batches on cuBLAS).
  const int64_t len = 11;
  for (auto [n, k] : {Shape{96, 160}, {1024, 1040}, {128, 512}}) {
    const auto w0 = random_weights(n * k, 5, 1.0f / std::sqrt(float(k))), seq = random(len * k, 6);
    const DeviceTensor w = weight_tensor(n, k, w0);
    auto run = [&](const std::vector<float>& x0, const std::vector<int32_t>& groups) {
      const int64_t m = static_cast<int64_t>(x0.size()) / k;
      DeviceTensor x = tensor(m, k, x0), y = tensor(m, n);
      StagedIndices idx(ctx());
      const size_t g = idx.add(groups);
      idx.upload();
      check(ops::linear(ctx(), *x, *w, *y, idx[g]), "ops::linear");
      return y.download();
    };
    const std::vector<float> alone = run(seq, {0, len});
    for (int64_t before : {0, 1, 17, 64, 301})
      for (int64_t after : {0, 40}) {
        const int64_t m = before + len + after;
        auto x0 = random(m * k, static_cast<uint32_t>(100 + before + after));
        std::copy(seq.begin(), seq.end(), x0.begin() + before * k);
        std::vector<int32_t> groups = {0};
        if (before) groups.push_back(static_cast<int32_t>(before));
        groups.push_back(static_cast<int32_t>(before + len));
        if (after) groups.push_back(static_cast<int32_t>(m));
        const std::vector<float> batched = rows_of(run(x0, groups), n, before, before + len);
        const std::vector<double> alone_wide(alone.begin(), alone.end());
        EXPECT_TRUE(bitwise ? same_bits(batched, alone) : near(batched, alone_wide, tolerance(dtype(), 1, double(k))))
            << "w [" << n << ", " << k << "], the sequence at rows " << before << ".." << before + len << " of " << m;
      }
  }
}

// Bit for bit on every backend: the CPU and CUDA's f32 mode run one GEMM per row group where their kernels would
// round a row by m (cuBLAS's SGEMM does: on an H200, batches of 28+ rows differed from a row alone by up to 22 ulp);
// CUDA's bf16 GEMM needs no split.
TEST_P(OpSuite, LinearRowsDoNotDependOnTheBatch) { expect_linear_rows_independent(/*bitwise=*/true); }

// Head sizes 10 and 13 (odd: the CPU only), 64 and 128 (bf16 on CUDA takes the tensor-core kernel there), 200 (the
// CUDA-core kernel's wider register layout, past 128).
constexpr int kHeadDims[] = {10, 13, 64, 128, 200};

double OpSuite::attention_tolerance(int head_dim, int32_t longest) const {
  // Scores are length-hd dot products, then the scale (1); exp within 3 ulp (6); the softmax's sum and the
  // weighted sum of v run over up to L keys (L each); the division (1): hd + 2L + 8, rounded up to 10. Roundings
  // to T: the output, and on the tensor-core kernel p before p·v, as FlashAttention rounds it.
  return tolerance(dtype(), 2, head_dim + 2.0 * longest + 10);
}

void OpSuite::expect_attention(const ops::AttentionShape& shape, const std::vector<int32_t>& lengths, bool pooled,
                               uint32_t seed) const {
  SCOPED_TRACE(::testing::Message() << "heads " << shape.heads << "/" << shape.kv_heads << ", head_dim "
                                    << shape.head_dim << ", " << lengths.size() << " sequences up to "
                                    << *std::max_element(lengths.begin(), lengths.end()) << " rows, "
                                    << (pooled ? "one pooled query per sequence" : "every row a query"));
  const AttentionRows rows = attention_rows(lengths, pooled);
  const int64_t n_q = rows.q_offsets.back(), n_kv = rows.kv_offsets.back();
  const auto q = random(n_q * shape.heads * shape.head_dim, seed, 1.5f);
  const auto k = random(n_kv * shape.kv_heads * shape.head_dim, seed + 1, 1.5f);
  const auto v = random(n_kv * shape.kv_heads * shape.head_dim, seed + 2);
  const double tol = attention_tolerance(shape.head_dim, *std::max_element(lengths.begin(), lengths.end()));
  EXPECT_TRUE(near(attention(q, k, v, shape, rows),
                   reference::attention(q, k, v, shape, rows.q_offsets, rows.q_positions, rows.kv_offsets), tol));
}

TEST_P(OpSuite, Attention) {
  // Lengths 1 (one key) to 130 (three of the CPU's 64-query blocks, five of CUDA's 32-query tiles, three of the
  // mma.sync kernel's 64-key tiles, two of the Hopper kernel's 128-key tiles, the last of them half multiplied), in
  // a batch whose offsets start mid-tile.
  uint32_t seed = 70;
  for (int hd : kHeadDims)
    for (auto [heads, kv_heads] : {std::pair{2, 2}, {4, 2}, {6, 2}})  // GQA ratios 1, 2, 3
      for (bool pooled : {false, true}) {
        const ops::AttentionShape shape{heads, kv_heads, hd, 1.0f / std::sqrt(float(hd))};
        if (!ops::check_attention_shape(ctx(), shape).ok()) continue;  // CUDA: odd head_dim (OpChecks tests the refusal)
        expect_attention(shape, {33, 1, 130, 7, 64}, pooled, seed += 3);
      }
}

TEST_P(OpSuite, AttentionOverALongSequence) {
  // 1000 keys: 16 of the mma.sync kernel's key tiles, 8 of the Hopper kernel's, 32 of the CUDA-core kernel's, 16 of
  // the CPU's query blocks.
  for (bool pooled : {false, true}) expect_attention({2, 1, 128, 1.0f / std::sqrt(128.0f)}, {3, 1000}, pooled, 90);
}

TEST_P(OpSuite, AttentionRowsDoNotDependOnTheBatch) {
  // Work is split per (sequence, head, query block) on every backend, so a sequence's output is the same bits
  // alone and between other sequences.
  const int32_t before = 37, len = 90, after = 20;
  uint32_t seed = 200;
  for (int hd : kHeadDims)
    for (bool pooled : {false, true}) {
      const ops::AttentionShape shape{4, 2, hd, 1.0f / std::sqrt(float(hd))};
      if (!ops::check_attention_shape(ctx(), shape).ok()) continue;
      SCOPED_TRACE(::testing::Message() << "head_dim " << hd << (pooled ? ", pooled" : ""));
      const int64_t q_dim = 4 * hd, kv_dim = 2 * hd;
      const AttentionRows batch = attention_rows({before, len, after}, pooled), alone = attention_rows({len}, pooled);
      const auto q = random(batch.q_offsets.back() * q_dim, seed++, 1.5f);
      const auto k = random(batch.kv_offsets.back() * kv_dim, seed++, 1.5f);
      const auto v = random(batch.kv_offsets.back() * kv_dim, seed++);
      const int32_t q_begin = batch.q_offsets[1], q_end = batch.q_offsets[2];
      const std::vector<float> in_batch = attention(q, k, v, shape, batch);
      const std::vector<float> by_itself =
          attention(rows_of(q, q_dim, q_begin, q_end), rows_of(k, kv_dim, before, before + len),
                    rows_of(v, kv_dim, before, before + len), shape, alone);
      EXPECT_TRUE(same_bits(rows_of(in_batch, q_dim, q_begin, q_end), by_itself));
    }
}

TEST_P(OpSuite, AttentionOfShortSequencesHasTheirBitsAloneAndBesideALongOne) {
  // A call whose rows all see at most 64 keys (a query, short texts, a short text's pooled row) runs on another
  // kernel in CUDA bf16 than a call with a longer sequence in it: each short sequence alone, and a chunk of its
  // later rows alone, must give the bits the same rows have in a batch with a 300-row sequence. Qwen3's head
  // groups: 2 (0.6B) and 4 (4B, 8B) query heads per kv head.
  const std::vector<int32_t> shorts = {1, 2, 7, 15, 16, 17, 31, 32, 33, 48, 63, 64};
  std::vector<int32_t> lengths = {300};
  lengths.insert(lengths.end(), shorts.begin(), shorts.end());
  uint32_t seed = 500;
  for (int heads : {4, 8})
    for (int hd : {64, 128})
      for (bool pooled : {false, true}) {
        const ops::AttentionShape shape{heads, 2, hd, 1.0f / std::sqrt(float(hd))};
        if (!ops::check_attention_shape(ctx(), shape).ok()) continue;
        SCOPED_TRACE(::testing::Message() << heads << " heads, head_dim " << hd << (pooled ? ", pooled" : ""));
        const int64_t q_dim = int64_t{heads} * hd, kv_dim = 2 * hd;
        const AttentionRows batch = attention_rows(lengths, pooled);
        const auto q = random(batch.q_offsets.back() * q_dim, seed++, 1.5f);
        const auto k = random(batch.kv_offsets.back() * kv_dim, seed++, 1.5f);
        const auto v = random(batch.kv_offsets.back() * kv_dim, seed++);
        const std::vector<float> in_batch = attention(q, k, v, shape, batch);
        for (size_t s = 1; s < lengths.size(); ++s) {
          const int32_t len = lengths[s];
          SCOPED_TRACE(::testing::Message() << "a sequence of " << len << " rows");
          const int32_t q_begin = batch.q_offsets[s], q_end = batch.q_offsets[s + 1];
          const int32_t kv_begin = batch.kv_offsets[s], kv_end = batch.kv_offsets[s + 1];
          const auto k_s = rows_of(k, kv_dim, kv_begin, kv_end), v_s = rows_of(v, kv_dim, kv_begin, kv_end);
          const AttentionRows alone = attention_rows({len}, pooled);
          EXPECT_TRUE(same_bits(rows_of(in_batch, q_dim, q_begin, q_end),
                                attention(rows_of(q, q_dim, q_begin, q_end), k_s, v_s, shape, alone)));
          // Its rows from the middle on, as a chunk continuing it would send them: on the GPU, too, a call whose rows
          // see at most 64 keys (the CPU keeps a chunk's bits from a 64-row block's start on: the chunk tests above).
          if (pooled || len < 2 || ctx().device() != Device::kCuda) continue;
          const int32_t first = len / 2;
          AttentionRows chunk;
          chunk.kv_offsets = {0, len};
          for (int32_t p = first; p < len; ++p) chunk.q_positions.push_back(p);
          chunk.q_offsets = {0, len - first};
          EXPECT_TRUE(same_bits(rows_of(in_batch, q_dim, q_begin + first, q_end),
                                attention(rows_of(q, q_dim, q_begin + first, q_end), k_s, v_s, shape, chunk)));
        }
      }
}

TEST_P(OpSuite, AttentionOfManySequencesKeepsEachOnesBits) {
  // Far more work items than a GPU has multiprocessors: the Hopper kernel's blocks each take many items in turn,
  // its key tiles streaming from one item into the next (the next item's q and first tile load during the last
  // tile of the one before). 48 sequences of 1..257 rows, 8 query heads over 2 kv heads: against the reference,
  // and sequences of one, two and three key tiles alone give the bits they have in the batch.
  std::mt19937 rng(31);
  std::uniform_int_distribution<int32_t> length(1, 200);
  std::vector<int32_t> lengths(48);
  for (int32_t& len : lengths) len = length(rng);
  lengths[10] = 1, lengths[25] = 200, lengths[40] = 257;
  uint32_t seed = 300;
  for (int hd : {64, 128}) {
    const ops::AttentionShape shape{8, 2, hd, 1.0f / std::sqrt(float(hd))};
    if (!ops::check_attention_shape(ctx(), shape).ok()) continue;
    SCOPED_TRACE(::testing::Message() << "head_dim " << hd);
    const int64_t q_dim = 8 * hd, kv_dim = 2 * hd;
    const AttentionRows batch = attention_rows(lengths, false);
    const auto q = random(batch.q_offsets.back() * q_dim, seed++, 1.5f);
    const auto k = random(batch.kv_offsets.back() * kv_dim, seed++, 1.5f);
    const auto v = random(batch.kv_offsets.back() * kv_dim, seed++);
    const std::vector<float> in_batch = attention(q, k, v, shape, batch);
    const double tol = attention_tolerance(hd, *std::max_element(lengths.begin(), lengths.end()));
    EXPECT_TRUE(near(in_batch, reference::attention(q, k, v, shape, batch.q_offsets, batch.q_positions,
                                                    batch.kv_offsets), tol));
    for (int s : {10, 25, 40}) {
      SCOPED_TRACE(::testing::Message() << "sequence " << s << " (" << lengths[s] << " rows) alone");
      const int32_t q_begin = batch.q_offsets[s], q_end = batch.q_offsets[s + 1];
      const int32_t kv_begin = batch.kv_offsets[s], kv_end = batch.kv_offsets[s + 1];
      const std::vector<float> by_itself =
          attention(rows_of(q, q_dim, q_begin, q_end), rows_of(k, kv_dim, kv_begin, kv_end),
                    rows_of(v, kv_dim, kv_begin, kv_end), shape, attention_rows({lengths[s]}, false));
      EXPECT_TRUE(same_bits(rows_of(in_batch, q_dim, q_begin, q_end), by_itself));
    }
  }
}

void OpSuite::expect_chunk_matches_whole(int32_t len, int32_t first, uint32_t seed) const {
  for (int hd : kHeadDims) {
    const ops::AttentionShape shape{4, 2, hd, 1.0f / std::sqrt(float(hd))};
    if (!ops::check_attention_shape(ctx(), shape).ok()) continue;
    SCOPED_TRACE(::testing::Message() << "head_dim " << hd << ", rows " << first << ".." << len - 1 << " of " << len);
    const int64_t q_dim = 4 * hd, kv_dim = 2 * hd;
    const AttentionRows whole = attention_rows({len}, false);
    AttentionRows chunk;
    chunk.kv_offsets = {0, len};
    for (int32_t p = first; p < len; ++p) chunk.q_positions.push_back(p);
    chunk.q_offsets = {0, len - first};
    const auto q = random(len * q_dim, seed++, 1.5f), k = random(len * kv_dim, seed++, 1.5f);
    const auto v = random(len * kv_dim, seed++);
    const std::vector<float> all = attention(q, k, v, shape, whole);
    const std::vector<float> later = attention(rows_of(q, q_dim, first, len), k, v, shape, chunk);
    EXPECT_TRUE(same_bits(rows_of(all, q_dim, first, len), later));
  }
}

TEST_P(OpSuite, AttentionOfAChunkReadsTheKeysBeforeIt) {
  // Chunked prefill: the queries of a sequence's later rows alone (positions 320..999, as a continuing chunk sends
  // them) over all of its keys give the same bits as those rows of the whole sequence's call. The key tiles start
  // at key 0 either way; CUDA computes each row alone, the CPU in blocks of 64 query rows from the chunk's first,
  // which are the whole call's blocks when the chunk starts at a multiple of 64 (as chunks are cut).
  expect_chunk_matches_whole(/*len=*/1000, /*first=*/320, /*seed=*/400);
}

TEST_P(OpSuite, AttentionOfAChunkStartingMidTileKeepsItsBitsOnTheGpu) {
  // A chunk may start anywhere (--chunked-prefill-size is any number), so on the GPU a row lands in query tiles of
  // other extents than in the whole call: whole, rows 130..191 share a tile reaching key 191, whose last 128-key
  // tile ends after its first 64 keys, so the Hopper kernel skips the other 64; from position 130 they share one
  // reaching key 193, whose last key tile is multiplied whole, and rows 130..191 then also see keys past them. A
  // key past a row adds exactly nothing, so the bits match. (The CPU runs 64-row query blocks from the chunk's
  // first row, which round a row otherwise unless the chunk starts at a multiple of 64.)
  if (on_cpu()) GTEST_SKIP() << "the CPU is bitwise only for chunks starting at multiples of 64";
  expect_chunk_matches_whole(/*len=*/200, /*first=*/130, /*seed=*/450);
}

TEST_P(OpSuite, Pool) {
  // Sums and the norm in double; each output rounded to f32 once, the norm's inverse and the scaling once each:
  // 4 units of 2^-24 whatever the input dtype (the output is f32 on every backend).
  const double tol = tolerance(DType::kF32, 0, 4);
  const std::vector<int32_t> offsets = {0, 1, 8, 41, 171};  // sequences of 1, 7, 33 and 130 rows
  uint32_t seed = 90;
  for (int64_t dim : {13, 301})
    for (bool normalize : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "hidden [171, " << dim << "], " << (normalize ? "" : "not ") << "normalised");
      auto h0 = random(offsets.back() * dim, seed++, 2.0f, 0.3f);
      std::fill(h0.begin() + 1 * dim, h0.begin() + 8 * dim, 0.0f);  // a zero vector stays zero, never NaN
      const DeviceTensor hidden = tensor(offsets.back(), dim, h0);
      DeviceTensor out(ctx(), DType::kF32, static_cast<int64_t>(offsets.size()) - 1, dim);
      StagedIndices idx(ctx());
      const size_t off = idx.add(offsets);
      idx.upload();
      ASSERT_TRUE(succeeded(ops::pool(ctx(), *hidden, idx[off], normalize, *out)));
      EXPECT_TRUE(near(out.download(), reference::pool(h0, dim, offsets, normalize), tol));
    }
}

TEST_P(OpSuite, LastTokenPoolingGathersThenPoolsOneRowEach) {
  // As the model pools under last-token pooling: gather each sequence's last row, then pool over identity offsets
  // 0, 1, …, n_seqs, where the mean of one row is the row.
  const std::vector<int32_t> offsets = {0, 1, 8, 41, 171}, last = {0, 7, 40, 170}, identity = {0, 1, 2, 3, 4};
  const int64_t dim = 301, n_seqs = 4;
  const auto h0 = random(offsets.back() * dim, 95, 2.0f, 0.3f);
  const DeviceTensor hidden = tensor(offsets.back(), dim, h0);
  DeviceTensor rows = tensor(n_seqs, dim), out(ctx(), DType::kF32, n_seqs, dim);
  StagedIndices idx(ctx());
  const size_t last_h = idx.add(last), ident_h = idx.add(identity);
  idx.upload();
  ASSERT_TRUE(succeeded(ops::gather_rows(ctx(), *hidden, idx[last_h], *rows)));
  ASSERT_TRUE(succeeded(ops::pool(ctx(), *rows, idx[ident_h], /*normalize=*/true, *out)));
  const std::vector<float> gathered = reference::gather_rows(h0, dim, last);
  EXPECT_TRUE(same_bits(rows.download(), gathered));
  EXPECT_TRUE(near(out.download(), reference::pool(gathered, dim, identity, true), tolerance(DType::kF32, 0, 4)));
}

TEST_P(OpSuite, GatherRows) {
  uint32_t seed = 100;
  for (auto [n, cols] : {Shape{1, 13}, {7, 64}, {33, 301}, {130, 13}}) {
    SCOPED_TRACE(::testing::Message() << n << " rows of x [131, " << cols << "]");
    const auto x0 = random(131 * cols, seed++);
    auto picked = random_ints(static_cast<size_t>(n), 131, seed++);  // repeats and any order
    picked[0] = 130;                                                 // the last row
    const DeviceTensor x = tensor(131, cols, x0);
    DeviceTensor out = tensor(n, cols);
    StagedIndices idx(ctx());
    const size_t rows = idx.add(picked);
    idx.upload();
    ASSERT_TRUE(succeeded(ops::gather_rows(ctx(), *x, idx[rows], *out)));
    EXPECT_TRUE(same_bits(out.download(), reference::gather_rows(x0, cols, picked)));  // a copy: exact
  }
}

// A checkpoint's embedding table as stored: its bytes (at an odd address, as a mapped safetensors tensor may start)
// and each element widened exactly to f32.
struct StoredTable {
  std::vector<unsigned char> bytes;
  std::vector<float> widened;
  const void* data() const { return bytes.data() + 1; }
};

StoredTable store_table(const std::vector<float>& values, DType stored) {
  StoredTable t;
  t.bytes.resize(1 + values.size() * dtype_size(stored));
  for (size_t i = 0; i < values.size(); ++i) {
    unsigned char* at = t.bytes.data() + 1 + i * dtype_size(stored);
    if (stored == DType::kF32) {
      std::memcpy(at, &values[i], 4);
      t.widened.push_back(values[i]);
    } else if (stored == DType::kBF16) {
      const uint16_t b = bf16_bits(values[i]);
      std::memcpy(at, &b, 2);
      t.widened.push_back(from_bf16_bits(b));
    } else {
      const _Float16 h = static_cast<_Float16>(values[i]);
      std::memcpy(at, &h, 2);
      t.widened.push_back(static_cast<float>(h));
    }
  }
  return t;
}

TEST_P(OpSuite, Embedding) {
  // ops::embedding_table makes the context's weight of the stored table (the CPU copies it as stored and widens
  // rows at lookup; CUDA uploads a copy in its dtype). Every row comes out as the stored value widened and rounded
  // to the context's dtype — a loss only for f16/f32 checkpoints on a bf16 context — bit for bit. The stored
  // table is overwritten before the lookup: nothing may read the checkpoint's mapping after load (a file truncated
  // while serving would fault the process).
  const int64_t vocab = 37;
  uint32_t seed = 110;
  for (DType stored : {DType::kF32, DType::kBF16, DType::kF16})
    for (auto [n, dim] : {Shape{1, 13}, {7, 64}, {33, 13}, {130, 64}}) {
      SCOPED_TRACE(::testing::Message() << dtype_name(stored) << " table [" << vocab << ", " << dim << "], " << n
                                        << " ids");
      StoredTable table = store_table(random_values(DType::kF32, vocab * dim, seed++), stored);
      auto weight = ops::embedding_table(ctx(), {table.data(), stored, vocab, dim}, "embed_tokens.weight");
      ASSERT_TRUE(succeeded(weight.status()));
      std::fill(table.bytes.begin(), table.bytes.end(), 0xff);  // NaN in every dtype
      auto ids = random_ints(static_cast<size_t>(n), static_cast<int32_t>(vocab), seed++);
      ids[0] = static_cast<int32_t>(vocab - 1);
      std::vector<float> want = reference::gather_rows(table.widened, dim, ids);
      for (float& e : want) e = round_to(dtype(), e);
      DeviceTensor out = tensor(n, dim);
      StagedIndices idx(ctx());
      const size_t id_h = idx.add(ids);
      idx.upload();
      ASSERT_TRUE(succeeded(ops::embedding(ctx(), weight->tensor, idx[id_h], *out)));
      EXPECT_TRUE(same_bits(out.download(), want));
    }
}

EMBEDSERVE_INSTANTIATE_ON_EVERY_BACKEND(OpSuite);

}  // namespace
}  // namespace embedserve::testing
