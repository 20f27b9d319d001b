// The AVX2 + FMA panel of cpu::linear_bf16, for CPUs without AVX-512: x stays f32, each bf16 weight is widened
// to f32 as it is loaded (a shift: exact), 8-lane FMAs. Compiled for AVX2 by target attributes only;
// linear_bf16.cc calls it only where CPUID reports AVX2 and FMA.
#include <immintrin.h>

#include <cstring>

#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/gemm_bf16_panel.h"

namespace embedserve::ops::cpu::gemm_bf16 {
namespace {

#define EMBEDSERVE_AVX2 __attribute__((target("avx2,fma")))

EMBEDSERVE_AVX2 inline __m256 widen(__m128i bf16) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bf16), 16));
}

// A fixed reduction tree over the 8 lanes.
EMBEDSERVE_AVX2 inline float sum_lanes(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// R rows × C columns, one ymm accumulator each: lane j sums the products of k ≡ j (mod 8) in k order, then
// sum_lanes; the order depends on k alone, so a row's bits do not depend on its tile or batch. 3×4 = 12
// accumulators + 3 x vectors + 1 weight vector fill the 16 ymm registers.
struct Kernel {
  using A = float;
  static constexpr int kTileRows = 3;
  template <int R, int C>
  EMBEDSERVE_AVX2 static void tile(const float* a, const uint16_t* w, int64_t k, float* y, int64_t ldy) {
    __m256 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
    int64_t kk = 0;
    for (; kk + 8 <= k; kk += 8) {
      __m256 xv[R];
      for (int r = 0; r < R; ++r) xv[r] = _mm256_loadu_ps(a + r * k + kk);
      for (int c = 0; c < C; ++c) {
        const __m256 wv = widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + c * k + kk)));
        for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
      }
    }
    if (kk < k) {  // the last k % 8 elements through zero-padded copies (never reading past the operands)
      const size_t rest = static_cast<size_t>(k - kk);
      __m256 xv[R];
      for (int r = 0; r < R; ++r) {
        float pad[8] = {};
        std::memcpy(pad, a + r * k + kk, rest * sizeof(float));
        xv[r] = _mm256_loadu_ps(pad);
      }
      for (int c = 0; c < C; ++c) {
        uint16_t pad[8] = {};
        std::memcpy(pad, w + c * k + kk, rest * sizeof(uint16_t));
        const __m256 wv = widen(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pad)));
        for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) y[r * ldy + c] = sum_lanes(acc[r][c]);
  }
};

}  // namespace

EMBEDSERVE_AVX2 void panel_avx2(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y,
                                int64_t ldy) {
  panel<Kernel>(a, rows, w, cols, k, y, ldy);
}

}  // namespace embedserve::ops::cpu::gemm_bf16
