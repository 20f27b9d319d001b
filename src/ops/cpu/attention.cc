// Causal grouped-query attention per sequence, in query blocks so memory stays O(block × length).
#include <cblas.h>

#include <algorithm>
#include <vector>

#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

// 64 query rows per task: the scores of one task are 64 × length floats (8 MB at 32k tokens) instead of
// the length² (4 GB at 32k) a whole-sequence attention matrix would take, and the two GEMMs per task are
// still wide enough to run near OpenBLAS's peak.
constexpr int64_t kQueryBlock = 64;

struct Task {
  int32_t seq;
  int32_t head;
  int64_t q_begin;  // first q row of the block (a row index into q)
  int64_t q_rows;
};

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& shape,
               int64_t q_stride, int64_t kv_stride, std::span<const int32_t> q_offsets, std::span<const int32_t> q_positions,
               std::span<const int32_t> kv_offsets) {
  const int64_t hd = shape.head_dim;
  const int64_t out_stride = static_cast<int64_t>(shape.heads) * hd;  // floats between out rows (dense)
  const int group = shape.heads / shape.kv_heads;

  // Tasks depend only on each sequence's own rows, so a sequence's result is the same in any batch.
  std::vector<Task> tasks;
  for (size_t s = 0; s + 1 < q_offsets.size(); ++s)
    for (int64_t b = q_offsets[s]; b < q_offsets[s + 1]; b += kQueryBlock)
      for (int h = 0; h < shape.heads; ++h)
        tasks.push_back({static_cast<int32_t>(s), h, b, std::min<int64_t>(kQueryBlock, q_offsets[s + 1] - b)});

#pragma omp parallel
  {
    std::vector<float> scores;  // f32 [q_rows, n_keys] of the task at hand
#pragma omp for schedule(dynamic, 1)
    for (size_t i = 0; i < tasks.size(); ++i) {
      const Task& t = tasks[i];
      // Queries within a block have ascending positions: the last one sees the most keys.
      const int64_t n_keys = q_positions[t.q_begin + t.q_rows - 1] + 1;
      const float* qh = q + t.q_begin * q_stride + t.head * hd;
      const int64_t kv_head = t.head / group;
      const float* kh = k + static_cast<int64_t>(kv_offsets[t.seq]) * kv_stride + kv_head * hd;
      const float* vh = v + static_cast<int64_t>(kv_offsets[t.seq]) * kv_stride + kv_head * hd;
      scores.resize(static_cast<size_t>(t.q_rows * n_keys));
      // scores [q_rows, n_keys] = scale · Q [q_rows, hd] · K [n_keys, hd]ᵀ. Inside this parallel region
      // OpenBLAS (OpenMP build) runs single-threaded, so tasks do not oversubscribe the cores.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(t.q_rows), static_cast<int>(n_keys),
                  static_cast<int>(hd), shape.scale, qh, static_cast<int>(q_stride), kh, static_cast<int>(kv_stride),
                  0.0f, scores.data(), static_cast<int>(n_keys));
      for (int64_t r = 0; r < t.q_rows; ++r) {
        float* row = scores.data() + r * n_keys;
        const int64_t visible = q_positions[t.q_begin + r] + 1;  // causal: keys 0..position
        softmax(row, visible);
        std::fill(row + visible, row + n_keys, 0.0f);
      }
      // out [q_rows, hd] = P [q_rows, n_keys] · V [n_keys, hd]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(t.q_rows), static_cast<int>(hd),
                  static_cast<int>(n_keys), 1.0f, scores.data(), static_cast<int>(n_keys), vh,
                  static_cast<int>(kv_stride), 0.0f, out + t.q_begin * out_stride + t.head * hd,
                  static_cast<int>(out_stride));
    }
  }
}

}  // namespace embedserve::ops::cpu
