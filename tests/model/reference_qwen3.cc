// Naive double-precision Qwen3 (modeling_qwen3.py's math, written out loop by loop).
#include "reference_qwen3.h"

#include <cmath>
#include <string>

namespace embedserve::testing {
namespace {

using Mat = std::vector<double>;

// y [n, out] = x [n, in] · w [out, in]ᵀ
Mat linear(const Mat& x, const std::vector<float>& w, int64_t n, int64_t in, int64_t out) {
  Mat y(n * out, 0.0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t i = 0; i < in; ++i) s += x[t * in + i] * w[o * in + i];
      y[t * out + o] = s;
    }
  return y;
}

// RMSNorm over consecutive rows of `dim`.
void rms_norm(Mat& x, const std::vector<float>& w, int64_t dim, double eps) {
  for (size_t r = 0; r < x.size() / dim; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += x[r * dim + i] * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int64_t i = 0; i < dim; ++i) x[r * dim + i] = x[r * dim + i] * inv * w[i];
  }
}

void rope(Mat& x, int64_t n, int heads, int hd, double theta) {
  for (int64_t t = 0; t < n; ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const double angle = double(t) * std::pow(theta, -2.0 * i / hd);
        double& a = x[(t * heads + h) * hd + i];
        double& b = x[(t * heads + h) * hd + hd / 2 + i];
        const double a0 = a, b0 = b;
        a = a0 * std::cos(angle) - b0 * std::sin(angle);
        b = b0 * std::cos(angle) + a0 * std::sin(angle);
      }
}

}  // namespace

std::vector<double> reference_qwen3(const TinyQwen3& m, std::span<const int32_t> ids) {
  const TinyQwen3Spec& s = m.spec;
  const int64_t n = static_cast<int64_t>(ids.size()), H = s.hidden, hd = s.head_dim;
  const int64_t qd = int64_t{s.heads} * hd, kvd = int64_t{s.kv_heads} * hd;
  Mat x(n * H);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < H; ++i) x[t * H + i] = m.w("embed_tokens.weight")[ids[t] * H + i];
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    Mat h = x;
    rms_norm(h, m.w(p + "input_layernorm.weight"), H, s.rms_norm_eps);
    Mat q = linear(h, m.w(p + "self_attn.q_proj.weight"), n, H, qd);
    Mat k = linear(h, m.w(p + "self_attn.k_proj.weight"), n, H, kvd);
    Mat v = linear(h, m.w(p + "self_attn.v_proj.weight"), n, H, kvd);
    rms_norm(q, m.w(p + "self_attn.q_norm.weight"), hd, s.rms_norm_eps);
    rms_norm(k, m.w(p + "self_attn.k_norm.weight"), hd, s.rms_norm_eps);
    rope(q, n, s.heads, s.head_dim, s.rope_theta);
    rope(k, n, s.kv_heads, s.head_dim, s.rope_theta);
    Mat attn(n * qd, 0.0);
    const int group = s.heads / s.kv_heads;
    for (int64_t t = 0; t < n; ++t)
      for (int hh = 0; hh < s.heads; ++hh) {
        const int kvh = hh / group;
        std::vector<double> p_(t + 1);
        double max = -1e300, sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += q[(t * s.heads + hh) * hd + i] * k[(j * s.kv_heads + kvh) * hd + i];
          p_[j] = d / std::sqrt(double(hd));
          max = std::max(max, p_[j]);
        }
        for (auto& e : p_) sum += (e = std::exp(e - max));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t i = 0; i < hd; ++i)
            attn[(t * s.heads + hh) * hd + i] += p_[j] / sum * v[(j * s.kv_heads + kvh) * hd + i];
      }
    const Mat o = linear(attn, m.w(p + "self_attn.o_proj.weight"), n, qd, H);
    for (int64_t i = 0; i < n * H; ++i) x[i] += o[i];
    h = x;
    rms_norm(h, m.w(p + "post_attention_layernorm.weight"), H, s.rms_norm_eps);
    Mat g = linear(h, m.w(p + "mlp.gate_proj.weight"), n, H, s.intermediate);
    const Mat u = linear(h, m.w(p + "mlp.up_proj.weight"), n, H, s.intermediate);
    for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    const Mat d = linear(g, m.w(p + "mlp.down_proj.weight"), n, s.intermediate, H);
    for (int64_t i = 0; i < n * H; ++i) x[i] += d[i];
  }
  rms_norm(x, m.w("norm.weight"), H, s.rms_norm_eps);
  return x;
}

std::vector<double> reference_embedding(const TinyQwen3& m, std::span<const int32_t> ids) {
  const int64_t H = m.spec.hidden, n = static_cast<int64_t>(ids.size());
  const Mat states = reference_qwen3(m, ids);
  std::vector<double> v(H, 0.0);
  if (m.spec.pooling == "mean") {
    for (int64_t t = 0; t < n; ++t)
      for (int64_t i = 0; i < H; ++i) v[i] += states[t * H + i] / n;
  } else {
    const int64_t row = m.spec.pooling == "cls" ? 0 : n - 1;
    for (int64_t i = 0; i < H; ++i) v[i] = states[row * H + i];
  }
  if (m.spec.normalize) {
    double ss = 0;
    for (double e : v) ss += e * e;
    for (double& e : v) e /= std::sqrt(ss);
  }
  return v;
}

double cosine(std::span<const float> got, std::span<const double> reference) {
  double dot = 0, ng = 0, nr = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    dot += got[i] * reference[i];
    ng += double(got[i]) * got[i];
    nr += reference[i] * reference[i];
  }
  return dot / std::sqrt(ng * nr);
}

}  // namespace embedserve::testing
