// One reference per op of src/ops, in plain double-precision C++ on the host: the exact math each op approximates,
// written once for every backend and dtype the op suite runs. Inputs are the values the device holds (already
// rounded to its dtype); matrices are row-major vectors, shapes as in the op's header.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "ops/attention.h"

namespace embedserve::testing::reference {

using Result = std::vector<double>;

// add: x + y (any vectors of numbers: the inputs, or another reference's result).
template <typename X, typename Y>
Result add(const X& x, const Y& y) {
  Result out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = double(x[i]) + double(y[i]);
  return out;
}

// rms_norm: out [rows, cols] = w · x / sqrt(mean(x²) + eps) per row of x [rows, cols], w [cols].
template <typename X>
Result rms_norm(const X& x, std::span<const float> w, double eps) {
  const size_t cols = w.size();
  Result out(x.size());
  for (size_t r = 0; r < x.size() / cols; ++r) {
    double ss = 0;
    for (size_t i = 0; i < cols; ++i) ss += double(x[r * cols + i]) * double(x[r * cols + i]);
    const double inv = 1.0 / std::sqrt(ss / double(cols) + eps);
    for (size_t i = 0; i < cols; ++i) out[r * cols + i] = double(w[i]) * (double(x[r * cols + i]) * inv);
  }
  return out;
}

// qk_norm_rope: x [n, heads · head_dim] (head_dim = w.size()), each head's row RMS-normalised, then rotated in the
// rotate-half layout by angle = float(positions[row]) · inv_freq[i] — rounded to f32 as transformers computes it
// (position_ids.float() @ inv_freq), so the one deliberate rounding of the model is the reference's too.
inline Result qk_norm_rope(std::span<const float> x, std::span<const float> w, double eps,
                           std::span<const int32_t> positions, std::span<const float> inv_freq) {
  const size_t hd = w.size(), half = hd / 2, row = x.size() / positions.size();
  Result out = rms_norm(x, w, eps);
  for (size_t t = 0; t < positions.size(); ++t)
    for (size_t h = 0; h < row / hd; ++h)
      for (size_t i = 0; i < half; ++i) {
        const double angle = double(static_cast<float>(positions[t]) * inv_freq[i]);
        double& a = out[t * row + h * hd + i];
        double& b = out[t * row + h * hd + half + i];
        const double a0 = a, b0 = b;
        a = a0 * std::cos(angle) - b0 * std::sin(angle);
        b = b0 * std::cos(angle) + a0 * std::sin(angle);
      }
  return out;
}

// swiglu: out [n, d] = silu(gate) · up, gate and up the two halves of each row of gate_up [n, 2d].
inline Result swiglu(std::span<const float> gate_up, size_t d) {
  const size_t n = gate_up.size() / (2 * d);
  Result out(n * d);
  for (size_t r = 0; r < n; ++r)
    for (size_t c = 0; c < d; ++c) {
      const double g = gate_up[r * 2 * d + c], u = gate_up[r * 2 * d + d + c];
      out[r * d + c] = g / (1.0 + std::exp(-g)) * u;
    }
  return out;
}

// linear: y [m, n] = x [m, k] · w [n, k]ᵀ.
inline Result linear(std::span<const float> x, std::span<const float> w, size_t k) {
  const size_t m = x.size() / k, n = w.size() / k;
  Result y(m * n);
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      double s = 0;
      for (size_t p = 0; p < k; ++p) s += double(x[i * k + p]) * double(w[j * k + p]);
      y[i * n + j] = s;
    }
  return y;
}

// attention: causal softmax(scale · q·kᵀ) · v per sequence and head; q row r of sequence s sees the keys at
// positions 0..q_positions[r] of kv rows [kv_offsets[s], kv_offsets[s+1]); query head h reads kv head
// h / (heads / kv_heads).
inline Result attention(std::span<const float> q, std::span<const float> k, std::span<const float> v,
                        const ops::AttentionShape& s, std::span<const int32_t> q_offsets,
                        std::span<const int32_t> q_positions, std::span<const int32_t> kv_offsets) {
  const size_t hd = s.head_dim, group = s.heads / s.kv_heads;
  Result out(q.size());
  for (size_t seq = 0; seq + 1 < q_offsets.size(); ++seq)
    for (int32_t r = q_offsets[seq]; r < q_offsets[seq + 1]; ++r)
      for (size_t h = 0; h < size_t(s.heads); ++h) {
        const size_t kvh = h / group, visible = size_t(q_positions[r]) + 1;
        const float* qh = q.data() + (size_t(r) * s.heads + h) * hd;
        auto kv_at = [&](std::span<const float> t, size_t j) {
          return t.data() + ((size_t(kv_offsets[seq]) + j) * s.kv_heads + kvh) * hd;
        };
        std::vector<double> p(visible);
        double max = -INFINITY, sum = 0;
        for (size_t j = 0; j < visible; ++j) {
          double dot = 0;
          for (size_t d = 0; d < hd; ++d) dot += double(qh[d]) * double(kv_at(k, j)[d]);
          p[j] = dot * s.scale;
          max = std::max(max, p[j]);
        }
        for (double& e : p) sum += (e = std::exp(e - max));
        double* o = out.data() + (size_t(r) * s.heads + h) * hd;
        for (size_t j = 0; j < visible; ++j)
          for (size_t d = 0; d < hd; ++d) o[d] += p[j] / sum * double(kv_at(v, j)[d]);
      }
  return out;
}

// pool: out [n_seqs, dim] = the mean of rows [offsets[s], offsets[s+1]) of hidden [*, dim], divided by its L2 norm
// when `normalize` (a zero vector stays zero).
inline Result pool(std::span<const float> hidden, size_t dim, std::span<const int32_t> offsets, bool normalize) {
  Result out((offsets.size() - 1) * dim, 0.0);
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    double* o = out.data() + s * dim;
    for (int32_t r = offsets[s]; r < offsets[s + 1]; ++r)
      for (size_t i = 0; i < dim; ++i) o[i] += hidden[size_t(r) * dim + i];
    double ss = 0;
    for (size_t i = 0; i < dim; ++i) {
      o[i] /= offsets[s + 1] - offsets[s];
      ss += o[i] * o[i];
    }
    if (normalize && ss > 0)
      for (size_t i = 0; i < dim; ++i) o[i] /= std::sqrt(ss);
  }
  return out;
}

// gather_rows: out [rows.size(), cols] = the rows `rows` of x [*, cols], bit for bit.
inline std::vector<float> gather_rows(std::span<const float> x, size_t cols, std::span<const int32_t> rows) {
  std::vector<float> out;
  for (int32_t r : rows) out.insert(out.end(), x.begin() + size_t(r) * cols, x.begin() + size_t(r + 1) * cols);
  return out;
}

}  // namespace embedserve::testing::reference
