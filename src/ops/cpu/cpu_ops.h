// CpuOps: the Ops interface on the CPU (OpenBLAS GEMMs, OpenMP-parallel kernels).
#pragma once

#include "ops/ops.h"

namespace embedserve::ops {

class CpuOps final : public Ops {
 public:
  // threads: 0 for every core. Configures OpenBLAS and OpenMP for the whole process (both keep their
  // thread count globally), so one CPU engine per process.
  explicit CpuOps(int threads);

  void embedding(const void* table, DType dtype, int64_t dim, std::span<const int32_t> ids,
                 float* out) const override;
  void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, int64_t stride,
                float eps) const override;
  void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
              std::span<const int32_t> row_groups) const override;
  void rope_tables(std::span<const int32_t> positions, std::span<const float> inv_freq, float* cos,
                   float* sin) const override;
  void apply_rope(float* x, const float* cos, const float* sin, int64_t n, int heads, int head_dim,
                  int64_t stride) const override;
  void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& shape,
                 std::span<const int32_t> q_offsets, std::span<const int32_t> q_positions,
                 std::span<const int32_t> kv_offsets) const override;
  void silu_mul(const float* gate, const float* up, float* out, int64_t n, int64_t d) const override;
  void add(float* x, const float* y, int64_t n) const override;
  void gather_rows(const float* x, int64_t dim, std::span<const int32_t> rows, float* out) const override;
};

}  // namespace embedserve::ops
