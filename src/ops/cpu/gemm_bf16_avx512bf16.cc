// The AVX512-BF16 panel of cpu::linear_bf16: vdpbf16ps dot products of bf16 x and bf16 weights into f32.
// Compiled for AVX512-BF16 by target attributes only (never the whole binary); linear_bf16.cc calls it only
// where CPUID reports the instructions.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics build some results from a deliberately undefined vector (_mm512_undefined_*),
// which its own -Wuninitialized then reports at every use: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/gemm_bf16_panel.h"

namespace embedserve::ops::cpu::gemm_bf16 {
namespace {

#define EMBEDSERVE_AVX512BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// R rows × C columns of y, each element in one zmm accumulator: lane j holds the products of k ≡ 2j, 2j+1
// (mod 32), summed over k in order, then the 16 lanes reduced by the same fixed tree. The order depends on k
// alone, so a row gets the same bits in a tile of 1 or 4 rows, at any place in the batch. 4×4 = 16
// accumulators + 4 weight vectors + 1 x vector fit the 32 zmm registers; each weight vector loaded is used by
// 4 rows and each x vector by 4 columns (loads : vdpbf16ps = 1 : 2, which keeps the dot-product ports busy).
struct Kernel {
  using A = uint16_t;
  static constexpr int kTileRows = 4;
  template <int R, int C>
  EMBEDSERVE_AVX512BF16 static void tile(const uint16_t* a, const uint16_t* w, int64_t k, float* y, int64_t ldy) {
    __m512 acc[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
    int64_t kk = 0;
    for (; kk + 32 <= k; kk += 32) {
      __m512i wv[C];
      for (int c = 0; c < C; ++c) wv[c] = _mm512_loadu_si512(w + c * k + kk);
      for (int r = 0; r < R; ++r) {
        const __m512i xv = _mm512_loadu_si512(a + r * k + kk);
        for (int c = 0; c < C; ++c)
          acc[r][c] = _mm512_dpbf16_ps(acc[r][c], reinterpret_cast<__m512bh>(xv), reinterpret_cast<__m512bh>(wv[c]));
      }
    }
    if (kk < k) {  // the last k % 32 elements, zero beyond k (masked loads never touch the bytes past it)
      const __mmask32 m = static_cast<__mmask32>((uint64_t{1} << (k - kk)) - 1);
      __m512i wv[C];
      for (int c = 0; c < C; ++c) wv[c] = _mm512_maskz_loadu_epi16(m, w + c * k + kk);
      for (int r = 0; r < R; ++r) {
        const __m512i xv = _mm512_maskz_loadu_epi16(m, a + r * k + kk);
        for (int c = 0; c < C; ++c)
          acc[r][c] = _mm512_dpbf16_ps(acc[r][c], reinterpret_cast<__m512bh>(xv), reinterpret_cast<__m512bh>(wv[c]));
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) y[r * ldy + c] = _mm512_reduce_add_ps(acc[r][c]);
  }
};

}  // namespace

EMBEDSERVE_AVX512BF16 void panel_avx512bf16(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k,
                                            float* y, int64_t ldy) {
  panel<Kernel>(a, rows, w, cols, k, y, ldy);
}

EMBEDSERVE_AVX512BF16 void pack_avx512bf16(const float* x, uint16_t* out, int64_t n) {
  // vcvtneps2bf16 rounds to nearest even, as torch's .to(torch.bfloat16) does.
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_loadu_ps(x + i))));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256i v = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, x + i)));
    _mm256_mask_storeu_epi16(out + i, m, v);
  }
}

}  // namespace embedserve::ops::cpu::gemm_bf16
