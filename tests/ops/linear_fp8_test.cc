// ops::linear with FP8 weights on every backend that runs them (the CPU; CUDA where a GPU is): against a float64
// reference of the quantised product, against the unquantised product, bit for bit alone and in batches, and the
// weight upload's quantisation (and an FP8 checkpoint's codes and scales as stored).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "core/float8.h"
#include "op_reference.h"
#include "op_suite_util.h"
#include "ops/linear.h"
#include "ops/memory.h"
#include "ops/rms_norm.h"
#include "ops/swiglu.h"

namespace embedserve::testing {
namespace {

struct Fp8Backend {
  Device device;
  DType dtype;  // activations
};

std::string fp8_backend_name(const Fp8Backend& b) { return std::string(device_name(b.device)) + "_fp8"; }

class LinearFp8 : public ::testing::TestWithParam<Fp8Backend> {
 protected:
  void SetUp() override {
    if (GetParam().device == Device::kCuda && ops::visible_gpus() == 0)
      GTEST_SKIP() << (ops::cuda_built() ? "no GPU visible" : "built without CUDA");
    ops::ContextOptions options;
    options.device = GetParam().device;
    options.quantization = Quantization::kFp8;
    auto ctx = ops::DeviceContext::create(options);
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    ctx_ = std::move(ctx).value();
    ASSERT_EQ(ctx_->weight_dtype(), DType::kF8E4M3);
    ASSERT_EQ(ctx_->dtype(), GetParam().dtype);
    device_ = std::make_unique<ops::ScopedDevice>(*ctx_);
  }
  const ops::DeviceContext& ctx() const { return *ctx_; }
  DType dtype() const { return GetParam().dtype; }

  // A [rows, cols] weight uploaded from f32 values: quantised per row by the upload, as a model's are.
  ops::Weight weight(const std::vector<float>& w, int64_t rows, int64_t cols) const {
    const ops::HostMatrix parts[] = {{w.data(), DType::kF32, rows, cols}};
    auto up = ops::upload_weight(ctx(), parts, "w");
    check(up.status(), "uploading an fp8 weight");
    return std::move(up).value();
  }

  // y = linear(x, w) on the backend, downloaded.
  std::vector<float> run(const std::vector<float>& x0, const ops::Weight& w, std::span<const int32_t> groups) const {
    const int64_t k = w.tensor.cols, m = static_cast<int64_t>(x0.size()) / k;
    DeviceTensor x(ctx(), dtype(), m, k, x0), y(ctx(), dtype(), m, w.tensor.rows);
    StagedIndices idx(ctx());
    const size_t g = idx.add(groups);
    idx.upload();
    auto scratch = ops::Buffer::allocate(ctx(), ops::linear_scratch_bytes(ctx(), m, k), "scratch");
    check(scratch.status(), "scratch");
    const ops::Tensor s = ops::Tensor::matrix(scratch->data(), DType::kF8E4M3, 1, static_cast<int64_t>(scratch->bytes()));
    check(ops::linear(ctx(), *x, w.tensor, *y, idx[g], s), "ops::linear");
    return y.download();
  }

  // add_rms_norm's and swiglu's FP8 codes and scales against the host rule over what they wrote (rows × cols and
  // rows × d), and the GEMM on them; the body of NormsAndSwigluQuantiseTheGemmInputTheyWriteAsLinearWould.
  void check_norm_and_swiglu_codes(int64_t rows, int64_t cols, int64_t d);

 private:
  std::unique_ptr<ops::DeviceContext> ctx_;
  std::unique_ptr<ops::ScopedDevice> device_;
};

// The quantised values a row becomes: e4m3(v / scale) · scale, scale = max|v| / 448 (core/float8.h).
std::vector<float> quantized(const std::vector<float>& v, int64_t rows, int64_t cols, std::vector<float>* scales) {
  std::vector<float> out(v.size());
  std::vector<uint8_t> q(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float s = fp8::quantize_row(v.data() + r * cols, cols, q.data());
    if (scales) scales->push_back(s);
    for (int64_t c = 0; c < cols; ++c) out[static_cast<size_t>(r * cols + c)] = fp8::to_float(q[static_cast<size_t>(c)]);
  }
  return out;
}

TEST_P(LinearFp8, ComputesTheQuantisedProduct) {
  // Shapes with n and k multiples of 16 (cuBLASLt's FP8 layout), m anything.
  uint32_t seed = 900;
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{1, 16, 16}, {7, 48, 96}, {33, 64, 272}, {130, 96, 1024}}) {
    SCOPED_TRACE(::testing::Message() << "m=" << m << " n=" << n << " k=" << k);
    const auto x0 = random_values(dtype(), static_cast<size_t>(m * k), seed++);
    const auto w0 = random_values(DType::kF32, static_cast<size_t>(n * k), seed++, 1.0f / std::sqrt(float(k)));
    const ops::Weight w = weight(w0, n, k);
    const int32_t groups[] = {0, static_cast<int32_t>(m)};
    const std::vector<float> y = run(x0, w, groups);
    // The reference multiplies the very e4m3 values the backend does (codes · scales) in float64: what remains is
    // the f32 sums (k units) and, on CUDA, the bf16 output (one rounding).
    std::vector<float> xs, ws;
    const auto xq = quantized(x0, m, k, &xs), wq = quantized(w0, n, k, &ws);
    reference::Result want(static_cast<size_t>(m * n));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p) s += double(xq[i * k + p]) * double(wq[j * k + p]);
        want[static_cast<size_t>(i * n + j)] = s * xs[static_cast<size_t>(i)] * ws[static_cast<size_t>(j)];
      }
    EXPECT_TRUE(near(y, want, tolerance(dtype(), 1, double(k) + 2)));
    // And the unquantised product within what two e4m3 roundings cost: each operand element is off by ≤ 2^-4
    // relative (3 mantissa bits), and errors of k independent terms add as a random walk: ~2^-4·√(2/3) normwise,
    // held to 0.08.
    EXPECT_TRUE(near(y, reference::linear(x0, w0, static_cast<size_t>(k)), 0.08));
  }
}

TEST_P(LinearFp8, ARowGetsTheSameBitsAloneAndInAnyBatch) {
  // Per-token scales depend on the row alone, and the GEMM is to sum each row's k in one order at any m (CUDA: no
  // workspace, so no split-K; the CPU: an order fixed by k).
  const int64_t len = 11;
  for (auto [n, k] : {std::pair<int64_t, int64_t>{96, 160}, {1024, 1040}}) {
    const auto w0 = random_values(DType::kF32, static_cast<size_t>(n * k), 5, 1.0f / std::sqrt(float(k)));
    const ops::Weight w = weight(w0, n, k);
    const auto seq = random_values(dtype(), static_cast<size_t>(len * k), 6);
    const int32_t alone_groups[] = {0, static_cast<int32_t>(len)};
    const std::vector<float> alone = run(seq, w, alone_groups);
    for (int64_t before : {0, 1, 17, 64, 301})
      for (int64_t after : {0, 40}) {
        const int64_t m = before + len + after;
        auto x0 = random_values(dtype(), static_cast<size_t>(m * k), static_cast<uint32_t>(100 + before + after));
        std::copy(seq.begin(), seq.end(), x0.begin() + before * k);
        const int32_t groups[] = {0, static_cast<int32_t>(m)};
        const std::vector<float> all = run(x0, w, groups);
        const std::vector<float> rows(all.begin() + before * n, all.begin() + (before + len) * n);
        EXPECT_TRUE(same_bits(rows, alone)) << "w [" << n << ", " << k << "], rows " << before << ".." << before + len
                                            << " of " << m;
      }
  }
}

TEST_P(LinearFp8, TheUploadQuantisesEachRowWithItsOwnScale) {
  const int64_t rows = 32, cols = 48;
  auto w0 = random_values(DType::kF32, static_cast<size_t>(rows * cols), 7);
  for (int64_t c = 0; c < cols; ++c) w0[static_cast<size_t>(3 * cols + c)] = 0.0f;  // an all-zero row: scale 1
  for (int64_t c = 0; c < cols; ++c) w0[static_cast<size_t>(5 * cols + c)] *= 1000.0f;  // a row far larger
  const ops::Weight w = weight(w0, rows, cols);
  std::vector<uint8_t> codes(static_cast<size_t>(rows * cols));
  std::vector<float> scales(static_cast<size_t>(rows));
  check(ops::copy_bytes_to_host(ctx(), w.tensor.data, codes.data(), codes.size()), "codes");
  check(ops::copy_bytes_to_host(ctx(), w.tensor.scales, scales.data(), scales.size() * 4), "scales");
  std::vector<uint8_t> want(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float s = fp8::quantize_row(w0.data() + r * cols, cols, want.data());
    EXPECT_EQ(scales[static_cast<size_t>(r)], s) << "row " << r;
    EXPECT_EQ(0, std::memcmp(codes.data() + r * cols, want.data(), want.size())) << "row " << r;
  }
  EXPECT_EQ(scales[3], 1.0f);
}

TEST_P(LinearFp8, AnFp8CheckpointsCodesAndScalesLoadAsStored) {
  // Two stacked parts as k|v|q are: one with a per-tensor scale (repeated for each row), one per channel (bf16).
  const int64_t cols = 32;
  std::vector<uint8_t> a(2 * cols), b(3 * cols);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint8_t>((i * 37) % 0x7e);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(0x80 | ((i * 11) % 0x7e));
  const float a_scale = 0.125f;
  const uint16_t b_scales[] = {bf16_bits(0.5f), bf16_bits(2.0f), bf16_bits(0.0078125f)};
  const ops::HostMatrix parts[] = {{a.data(), DType::kF8E4M3, 2, cols, 0, &a_scale, DType::kF32, 1},
                                   {b.data(), DType::kF8E4M3, 3, cols, 0, b_scales, DType::kBF16, 3}};
  auto w = ops::upload_weight(ctx(), parts, "a + b");
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  std::vector<uint8_t> codes(5 * cols);
  std::vector<float> scales(5);
  check(ops::copy_bytes_to_host(ctx(), w->tensor.data, codes.data(), codes.size()), "codes");
  check(ops::copy_bytes_to_host(ctx(), w->tensor.scales, scales.data(), scales.size() * 4), "scales");
  EXPECT_EQ(0, std::memcmp(codes.data(), a.data(), a.size()));
  EXPECT_EQ(0, std::memcmp(codes.data() + a.size(), b.data(), b.size()));
  EXPECT_EQ(scales, (std::vector<float>{0.125f, 0.125f, 0.5f, 2.0f, 0.0078125f}));
  // A NaN code is corrupt data, named.
  b[7] = 0x7f;
  auto bad = ops::upload_weight(ctx(), parts, "a + b");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tensor b holds NaN at element 7"), std::string::npos) << bad.status().to_string();
}

TEST_P(LinearFp8, NormsAndSwigluQuantiseTheGemmInputTheyWriteAsLinearWould) {
  // add_rms_norm and swiglu with `quantized` (one kernel on CUDA) give the codes and scales linear's own pass
  // gives for their output, so a GEMM told x_quantized gives the bits of one that quantises x itself.
  // Widths whose rows one thread's packs cover (1040, 272) and ones that take several packs a thread, the last
  // partly (2576 = 322 packs of 8 over 256 threads, 9744 = 1218: CUDA's kernels that hold a row in registers;
  // multiples of 16, as the FP8 GEMM's k must be).
  const int64_t rows = 19;
  for (auto [cols, d] : {std::pair<int64_t, int64_t>{1040, 272}, {2576, 9744}}) {
    SCOPED_TRACE(::testing::Message() << "norm width " << cols << ", SwiGLU width " << d);
    check_norm_and_swiglu_codes(rows, cols, d);
  }
}

void LinearFp8::check_norm_and_swiglu_codes(int64_t rows, int64_t cols, int64_t d) {
  auto scratch_of = [&](int64_t k) {
    auto b = ops::Buffer::allocate(ctx(), ops::linear_scratch_bytes(ctx(), rows, k), "scratch");
    check(b.status(), "scratch");
    return std::move(b).value();
  };
  auto as_tensor = [](const ops::Buffer& b) {
    return ops::Tensor::matrix(b.data(), DType::kF8E4M3, 1, static_cast<int64_t>(b.bytes()));
  };
  // What the host rule makes of a device tensor's rows, and what a scratch holds.
  auto host_rule = [&](const DeviceTensor& t, int64_t k) {
    const std::vector<float> v = t.download();
    std::vector<uint8_t> codes(static_cast<size_t>(rows * k));
    std::vector<float> scales(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r)
      scales[static_cast<size_t>(r)] = fp8::quantize_row(v.data() + r * k, k, codes.data() + r * k);
    return std::make_pair(codes, scales);
  };
  auto held = [&](const ops::Buffer& b, int64_t k) {
    std::vector<uint8_t> codes(static_cast<size_t>(rows * k));
    std::vector<float> scales(static_cast<size_t>(rows));
    check(ops::copy_bytes_to_host(ctx(), b.data(), codes.data(), codes.size()), "codes");
    check(ops::copy_bytes_to_host(ctx(), static_cast<const char*>(b.data()) + ops::linear_scratch_scales_offset(rows, k),
                                  scales.data(), scales.size() * 4),
          "scales");
    return std::make_pair(codes, scales);
  };

  DeviceTensor residual(ctx(), dtype(), rows, cols, random_values(dtype(), size_t(rows * cols), 31));
  DeviceTensor delta(ctx(), dtype(), rows, cols, random_values(dtype(), size_t(rows * cols), 32));
  DeviceTensor norm_weight(ctx(), dtype(), 1, cols, random_values(dtype(), size_t(cols), 33, 0.1f, 1.0f));
  DeviceTensor out(ctx(), dtype(), rows, cols);
  const ops::Buffer norm_scratch = scratch_of(cols);
  const ops::Tensor ns = as_tensor(norm_scratch);
  ASSERT_TRUE(succeeded(ops::add_rms_norm(ctx(), *residual, *delta, *norm_weight, 1e-6f, *out, &ns)));
  EXPECT_EQ(held(norm_scratch, cols), host_rule(out, cols)) << "add_rms_norm's codes and scales";

  DeviceTensor gate_up(ctx(), dtype(), rows, 2 * d, random_values(dtype(), size_t(rows * 2 * d), 34, 2.0f));
  DeviceTensor act(ctx(), dtype(), rows, d);
  const ops::Buffer act_scratch = scratch_of(d);
  const ops::Tensor as = as_tensor(act_scratch);
  ASSERT_TRUE(succeeded(ops::swiglu(ctx(), *gate_up, *act, &as)));
  EXPECT_EQ(held(act_scratch, d), host_rule(act, d)) << "swiglu's codes and scales";
  DeviceTensor plain(ctx(), dtype(), rows, d);
  ASSERT_TRUE(succeeded(ops::swiglu(ctx(), *gate_up, *plain)));
  EXPECT_TRUE(same_bits(plain.download(), act.download())) << "swiglu's output with and without quantising";
  // keep_out = false (the model's fp8 MLP: only the codes are read): the same codes and scales.
  DeviceTensor unkept(ctx(), dtype(), rows, d);
  const ops::Buffer unkept_scratch = scratch_of(d);
  const ops::Tensor us = as_tensor(unkept_scratch);
  ASSERT_TRUE(succeeded(ops::swiglu(ctx(), *gate_up, *unkept, &us, /*keep_out=*/false)));
  EXPECT_EQ(held(unkept_scratch, d), held(act_scratch, d)) << "swiglu's codes and scales without keeping out";

  // The GEMM on the pre-quantised input against the GEMM that quantises it itself.
  const int64_t n = 48;
  const ops::Weight w = weight(random_values(DType::kF32, size_t(n * d), 35, 0.06f), n, d);
  DeviceTensor y1(ctx(), dtype(), rows, n), y2(ctx(), dtype(), rows, n);
  StagedIndices idx(ctx());
  const int32_t groups[] = {0, static_cast<int32_t>(rows)};
  const size_t g = idx.add(groups);
  idx.upload();
  ASSERT_TRUE(succeeded(ops::linear(ctx(), *act, w.tensor, *y1, idx[g], as, /*x_quantized=*/true)));
  const ops::Buffer own = scratch_of(d);
  ASSERT_TRUE(succeeded(ops::linear(ctx(), *act, w.tensor, *y2, idx[g], as_tensor(own))));
  EXPECT_TRUE(same_bits(y1.download(), y2.download()));
}

INSTANTIATE_TEST_SUITE_P(Backends, LinearFp8,
                         ::testing::Values(Fp8Backend{Device::kCpu, DType::kF32}, Fp8Backend{Device::kCuda, DType::kBF16}),
                         [](const auto& info) { return fp8_backend_name(info.param); });

// A direct f32 → e4m3 rounding (exponent and mantissa taken apart, round half to even by hand): the reference the
// branch-free fp8::from_float is checked against.
uint8_t reference_e4m3(float x) {
  if (std::isnan(x)) return 0x7f;
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const float a = std::fabs(x);
  if (a >= 448.0f) return sign | 0x7e;
  if (a < 0.015625f) return sign | static_cast<uint8_t>(std::nearbyint(a * 512.0f));
  int exponent;
  const float m = std::frexp(a, &exponent);  // a = m · 2^exponent, m in [0.5, 1)
  float steps = (m * 2.0f - 1.0f) * 8.0f;    // the mantissa in eighths, fractional
  float whole = std::floor(steps);
  const float rest = steps - whole;
  if (rest > 0.5f || (rest == 0.5f && std::fmod(whole, 2.0f) == 1.0f)) whole += 1.0f;
  int e = exponent - 1, mantissa = static_cast<int>(whole);
  if (mantissa == 8) {
    mantissa = 0;
    ++e;
  }
  if (e > 8 || (e == 8 && mantissa == 7)) return sign | 0x7e;
  return sign | static_cast<uint8_t>(((e + 7) << 3) | mantissa);
}

TEST(Float8, TheBranchFreeRoundingAgreesWithTheDirectOne) {
  // Every 61st f32 bit pattern (70 million, all exponents and signs; the whole 2^32 agreed when written).
  uint64_t mismatches = 0;
  for (uint64_t b = 0; b < (uint64_t{1} << 32); b += 61) {
    const uint32_t u = static_cast<uint32_t>(b);
    float f;
    std::memcpy(&f, &u, 4);
    if (fp8::from_float(f) != reference_e4m3(f) && mismatches++ < 5)
      ADD_FAILURE() << "bits " << std::hex << u << ": " << int(fp8::from_float(f)) << " vs " << int(reference_e4m3(f));
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(Float8, RoundsToNearestEvenAndSaturates) {
  // Values from OCP's e4m3fn table: 1 is 0x38, 448 the largest (0x7e); ties go to the even code.
  EXPECT_EQ(fp8::from_float(0.0f), 0x00);
  EXPECT_EQ(fp8::from_float(-0.0f), 0x80);
  EXPECT_EQ(fp8::from_float(1.0f), 0x38);
  EXPECT_EQ(fp8::from_float(448.0f), 0x7e);
  EXPECT_EQ(fp8::from_float(500.0f), 0x7e);   // saturates (CUDA's __NV_SATFINITE)
  EXPECT_EQ(fp8::from_float(-1e30f), 0xfe);
  EXPECT_EQ(fp8::from_float(INFINITY), 0x7e);
  EXPECT_EQ(fp8::from_float(NAN), 0x7f);
  EXPECT_EQ(fp8::from_float(1.0625f), 0x38);  // halfway 1 → 1.125: even mantissa 0
  EXPECT_EQ(fp8::from_float(1.1875f), 0x3a);  // halfway 1.125 → 1.25: even mantissa 2
  EXPECT_EQ(fp8::from_float(-3.3f), 0xc5);    // 1.65·2 → 1.625·2
  EXPECT_EQ(fp8::from_float(0.0029296875f), 0x02);  // 1.5 subnormal steps of 2^-9: even 2
  EXPECT_EQ(fp8::from_float(0.0166015625f), 0x08);  // 2^-6·1.0625: halfway, into the first normal
  EXPECT_EQ(fp8::from_float(0.0009765625f), 0x00);  // half the smallest subnormal: even 0
  for (int c = 0; c < 256; ++c) {
    if (fp8::is_nan(static_cast<uint8_t>(c))) continue;
    EXPECT_EQ(fp8::from_float(fp8::to_float(static_cast<uint8_t>(c))), c) << "code " << c;
  }
  EXPECT_EQ(fp8::to_float(0x7e), 448.0f);
  EXPECT_EQ(fp8::to_float(0x01), std::ldexp(1.0f, -9));
}

}  // namespace
}  // namespace embedserve::testing
