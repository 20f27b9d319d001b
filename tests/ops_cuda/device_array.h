// Test helpers: device arrays of f32 or bf16 filled from f32 host data, poisoned before each kernel writes.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

#include "gpu_test_util.h"

namespace embedserve::cuda {

// The value a T tensor holds for f (bf16: round to nearest even).
template <typename T>
float representable(float f) {
  if constexpr (std::is_same_v<T, float>) return f;
  else return bf16_bits_to_float(float_to_bf16_bits(f));
}

// One ulp of T at 1.0: the unit of the tolerances below (f32 2^-23, bf16 2^-7 — bf16 keeps 8 bits).
template <typename T>
constexpr double unit_roundoff() {
  if constexpr (std::is_same_v<T, float>) return 1.0 / (1 << 23);
  else return 1.0 / (1 << 7);
}

// Random values of T (already rounded, so host references see exactly what the device sees).
template <typename T>
std::vector<float> random_values(size_t n, uint32_t seed, float stddev = 1.0f, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = representable<T>(dist(rng));
  return v;
}

// A device array of T; 0xFF bytes (NaN in f32 and bf16) until written.
template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(&p_, (n ? n : 1) * sizeof(T)), cudaSuccess);
    EXPECT_EQ(cudaMemset(p_, 0xFF, (n ? n : 1) * sizeof(T)), cudaSuccess);
  }
  explicit DeviceArray(const std::vector<float>& host) : DeviceArray(host.size()) { upload(host); }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  void upload(const std::vector<float>& host) {
    ASSERT_EQ(host.size(), n_);
    if constexpr (std::is_same_v<T, float>) {
      ASSERT_EQ(cudaMemcpy(p_, host.data(), n_ * 4, cudaMemcpyHostToDevice), cudaSuccess);
    } else {
      std::vector<uint16_t> bits(n_);
      for (size_t i = 0; i < n_; ++i) bits[i] = float_to_bf16_bits(host[i]);
      ASSERT_EQ(cudaMemcpy(p_, bits.data(), n_ * 2, cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  std::vector<float> download() const {
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<float> out(n_);
    if constexpr (std::is_same_v<T, float>) {
      EXPECT_EQ(cudaMemcpy(out.data(), p_, n_ * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    } else {
      std::vector<uint16_t> bits(n_);
      EXPECT_EQ(cudaMemcpy(bits.data(), p_, n_ * 2, cudaMemcpyDeviceToHost), cudaSuccess);
      for (size_t i = 0; i < n_; ++i) out[i] = bf16_bits_to_float(bits[i]);
    }
    return out;
  }
  T* get() const { return static_cast<T*>(p_); }
  size_t size() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// int32 indices on the device.
class DeviceInts {
 public:
  explicit DeviceInts(const std::vector<int32_t>& host) : n_(host.size()) {
    EXPECT_EQ(cudaMalloc(&p_, (n_ ? n_ : 1) * 4), cudaSuccess);
    if (n_) {
      EXPECT_EQ(cudaMemcpy(p_, host.data(), n_ * 4, cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  ~DeviceInts() { cudaFree(p_); }
  DeviceInts(const DeviceInts&) = delete;
  DeviceInts& operator=(const DeviceInts&) = delete;
  const int32_t* get() const { return static_cast<const int32_t*>(p_); }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
};

// ‖got − want‖ / ‖want‖, with every element checked to be a number (poison is NaN).
inline double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_FALSE(std::isnan(got[i])) << "unwritten or NaN output at " << i;
    if (std::isnan(got[i])) return INFINITY;
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

}  // namespace embedserve::cuda
