// The row and column walk every cpu::linear_bf16 panel shares: tiles of Kernel::kTileRows rows, then the rows left
// over, for each panel width up to 4 columns. Included by the per-instruction-set files only; each Kernel's tile is
// compiled for its instruction set by target attributes, this walk for the baseline (it only calls the tiles).
#pragma once

#include <cstdint>

namespace embedserve::ops::cpu::gemm_bf16 {

// Kernel: `using A` (x's element type as the tile reads it), `kTileRows` (rows per full tile, 1 to 4) and
// `template <int R, int C> static void tile(const A* a, const uint16_t* w, int64_t k, float* y, int64_t ldy)`,
// which computes R rows × C columns, each element accumulated in an order that depends on k alone.
template <class Kernel, int C>
void rows_of(const typename Kernel::A* a, int64_t rows, const uint16_t* w, int64_t k, float* y, int64_t ldy) {
  constexpr int T = Kernel::kTileRows;
  static_assert(T >= 1 && T <= 4, "tiles of 1 to 4 rows");
  int64_t r = 0;
  for (; r + T <= rows; r += T) Kernel::template tile<T, C>(a + r * k, w, k, y + r * ldy, ldy);
  const int64_t rest = rows - r;  // fewer than T: one smaller tile, the same arithmetic per element
  if constexpr (T > 3) if (rest == 3) return Kernel::template tile<3, C>(a + r * k, w, k, y + r * ldy, ldy);
  if constexpr (T > 2) if (rest == 2) return Kernel::template tile<2, C>(a + r * k, w, k, y + r * ldy, ldy);
  if constexpr (T > 1) if (rest == 1) return Kernel::template tile<1, C>(a + r * k, w, k, y + r * ldy, ldy);
}

// The Panel (gemm_bf16.h) of Kernel: every row of x against `cols` (1 to 4) weight rows.
template <class Kernel>
void panel(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y, int64_t ldy) {
  const auto* x = static_cast<const typename Kernel::A*>(a);
  switch (cols) {
    case 4: return rows_of<Kernel, 4>(x, rows, w, k, y, ldy);
    case 3: return rows_of<Kernel, 3>(x, rows, w, k, y, ldy);
    case 2: return rows_of<Kernel, 2>(x, rows, w, k, y, ldy);
    case 1: return rows_of<Kernel, 1>(x, rows, w, k, y, ldy);
    default: return;
  }
}

}  // namespace embedserve::ops::cpu::gemm_bf16
