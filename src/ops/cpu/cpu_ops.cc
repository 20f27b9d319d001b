// CpuOps forwards each op to its kernel file in this folder.
#include "ops/cpu/cpu_ops.h"

#include "ops/cpu/kernels.h"

namespace embedserve::ops {

CpuOps::CpuOps(int threads) { cpu::configure_blas(threads); }

void CpuOps::embedding(const void* table, DType dtype, int64_t dim, std::span<const int32_t> ids,
                       float* out) const {
  cpu::embedding(table, dtype, dim, ids, out);
}
void CpuOps::rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, int64_t stride,
                      float eps) const {
  cpu::rms_norm(x, w, y, rows, dim, stride, eps);
}
void CpuOps::linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
                    std::span<const int32_t> row_groups) const {
  cpu::linear(x, w, y, m, n, k, row_groups);
}
void CpuOps::rope_tables(std::span<const int32_t> positions, std::span<const float> inv_freq, float* cos,
                         float* sin) const {
  cpu::rope_tables(positions, inv_freq, cos, sin);
}
void CpuOps::apply_rope(float* x, const float* cos, const float* sin, int64_t n, int heads, int head_dim,
                        int64_t stride) const {
  cpu::apply_rope(x, cos, sin, n, heads, head_dim, stride);
}
void CpuOps::attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& shape,
                       std::span<const int32_t> q_offsets, std::span<const int32_t> q_positions,
                       std::span<const int32_t> kv_offsets) const {
  cpu::attention(q, k, v, out, shape, q_offsets, q_positions, kv_offsets);
}
void CpuOps::silu_mul(const float* gate, const float* up, float* out, int64_t n, int64_t d) const {
  cpu::silu_mul(gate, up, out, n, d);
}
void CpuOps::add(float* x, const float* y, int64_t n) const { cpu::add(x, y, n); }
void CpuOps::gather_rows(const float* x, int64_t dim, std::span<const int32_t> rows, float* out) const {
  cpu::gather_rows(x, dim, rows, out);
}

}  // namespace embedserve::ops
