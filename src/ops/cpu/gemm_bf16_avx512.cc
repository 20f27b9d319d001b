// The AVX-512F panel of cpu::linear_bf16, for AVX-512 CPUs without BF16 dot products (Skylake-X, Ice Lake):
// x stays f32, each bf16 weight is widened to f32 as it is loaded (a shift: exact), 16-lane FMAs.
// Compiled for AVX-512F by target attributes only; linear_bf16.cc calls it only where CPUID reports it.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics build some results from a deliberately undefined vector (_mm512_undefined_*),
// which its own -Wuninitialized then reports at every use: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/gemm_bf16_panel.h"

namespace embedserve::ops::cpu::gemm_bf16 {
namespace {

#define EMBEDSERVE_AVX512F __attribute__((target("avx512f,avx512bw,avx512vl")))

EMBEDSERVE_AVX512F inline __m512 widen(__m256i bf16) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}

// R rows × C columns, one zmm accumulator each: lane j sums the products of k ≡ j (mod 16) in k order, then a
// fixed reduction tree; the order depends on k alone, so a row's bits do not depend on its tile or batch.
struct Kernel {
  using A = float;
  static constexpr int kTileRows = 4;
  template <int R, int C>
  EMBEDSERVE_AVX512F static void tile(const float* a, const uint16_t* w, int64_t k, float* y, int64_t ldy) {
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    int64_t kk = 0;
    for (; kk + 16 <= k; kk += 16) {
      __m512 xv[R];
      for (int r = 0; r < R; ++r) xv[r] = _mm512_loadu_ps(a + r * k + kk);
      for (int c = 0; c < C; ++c) {
        const __m512 wv = widen(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + c * k + kk)));
        for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
      }
    }
    if (kk < k) {  // the last k % 16 elements, zero beyond k (masked loads never touch the bytes past it)
      const __mmask16 m = static_cast<__mmask16>((1u << (k - kk)) - 1);
      __m512 xv[R];
      for (int r = 0; r < R; ++r) xv[r] = _mm512_maskz_loadu_ps(m, a + r * k + kk);
      for (int c = 0; c < C; ++c) {
        const __m512 wv = widen(_mm256_maskz_loadu_epi16(m, w + c * k + kk));
        for (int r = 0; r < R; ++r) acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) y[r * ldy + c] = _mm512_reduce_add_ps(acc[r][c]);
  }
};

}  // namespace

EMBEDSERVE_AVX512F void panel_avx512(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y,
                                     int64_t ldy) {
  panel<Kernel>(a, rows, w, cols, k, y, ldy);
}

}  // namespace embedserve::ops::cpu::gemm_bf16
