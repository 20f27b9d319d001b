// Host-side helpers of every op test (the op suite and the kernel tests below it): seeded inputs rounded to a dtype,
// tolerances counted in roundings, and the comparisons (normwise error with a NaN check, bits, poison).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace embedserve {
// gtest prints an ErrorCode by name ("internal"), not as its bytes.
inline void PrintTo(ErrorCode code, std::ostream* os) { *os << error_code_name(code); }
}  // namespace embedserve

namespace embedserve::testing {

// Ends the test with `what` and the status when set-up (allocation, copies) fails: gtest reports the exception's
// message as the failure, and no assertion runs on a half-built case.
void check(const Status& status, const std::string& what);

// Rounding between f32 and bf16 (round to nearest even, as __float2bfloat16_rn and the weight upload do); widening
// is exact. round_to(f32, x) is x.
uint16_t bf16_bits(float f);
float from_bf16_bits(uint16_t bits);
float round_to(DType dtype, float f);

// n values drawn from N(mean, stddev²) by a seeded generator, each rounded to `dtype`: a reference then reads
// exactly the numbers the device holds.
std::vector<float> random_values(DType dtype, size_t n, uint32_t seed, float stddev = 1.0f, float mean = 0.0f);
// n ints drawn uniformly from [0, bound).
std::vector<int32_t> random_ints(size_t n, int32_t bound, uint32_t seed);

// Unit roundoff u of a dtype: a correctly rounded result is within u·|x| of the exact value. f32 keeps 24
// significant bits (2^-24), bf16 keeps 8 (2^-8).
double unit_roundoff(DType dtype);
// The bound an op's normwise relative error is held to: `roundings` roundings of a value to the op's dtype (each
// ≤ u_T), plus `f32_units` units of 2^-24 from its f32 arithmetic — a length-k sum or dot product counts k
// (Higham's γ_k ≈ k·2^-24), a function accurate to n ulp counts 2n (an ulp is up to 2u). On an f32 backend both
// are f32 roundings. Each test says which roundings it counts.
double tolerance(DType dtype, double roundings, double f32_units);

// Passes when every element of `got` is a number and ‖got − want‖ / ‖want‖ ≤ tolerance. The message gives the
// error, the bound, the first NaN (an element no kernel wrote) and the worst element.
::testing::AssertionResult near(std::span<const float> got, std::span<const double> want, double tolerance);
// Passes when got and want are the same bits; the message names the first element that differs.
::testing::AssertionResult same_bits(std::span<const float> got, std::span<const float> want);
// Passes when every element still holds the NaN poison: nothing wrote it.
::testing::AssertionResult untouched(std::span<const float> got);
// Passes when the status is OK; the message is the status.
::testing::AssertionResult succeeded(const Status& status);

}  // namespace embedserve::testing
