// The per-instruction-set panels behind cpu::linear_bf16 (linear_bf16.cc): each computes y for a few weight rows
// (output columns) and every row of x, one function per instruction set, compiled for it by target attributes
// and called only where CPUID says the CPU runs it.
#pragma once

#include <cstdint>

namespace embedserve::ops::cpu::gemm_bf16 {

// y [rows, cols] (row stride ldy) = a [rows, k] · w [cols, k]ᵀ, w bf16 with rows k apart, cols ≤ the panel's
// width. `a` is x as the panel reads it: bf16 (rows k apart) for the dot-product panel, f32 for the widening
// ones. Every output element is one dot product accumulated in the same order whatever `rows`, `cols` and the
// element's place in a tile, so a row's bits never depend on the batch.
using Panel = void (*)(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y, int64_t ldy);
// Converts n f32 values to bf16 (round to nearest even), as the dot-product panel reads x.
using Pack = void (*)(const float* x, uint16_t* out, int64_t n);

// AVX512-BF16: vdpbf16ps, two bf16 products per f32 lane, x rounded to bf16 first. 4 columns per panel.
inline constexpr int64_t kAvx512Bf16Cols = 4;
void panel_avx512bf16(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y, int64_t ldy);
void pack_avx512bf16(const float* x, uint16_t* out, int64_t n);
// AVX-512F: w widened to f32 on the fly, x f32, 16-lane FMAs. 4 columns per panel.
inline constexpr int64_t kAvx512Cols = 4;
void panel_avx512(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y, int64_t ldy);
// AVX2 + FMA: the same at 8 lanes. 4 columns per panel.
inline constexpr int64_t kAvx2Cols = 4;
void panel_avx2(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y, int64_t ldy);

}  // namespace embedserve::ops::cpu::gemm_bf16
