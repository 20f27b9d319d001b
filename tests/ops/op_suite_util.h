// The op suite's harness: the backends it runs on, tensors and staged indices in a context's memory (made through
// the op API's own memory calls), and the fixture that gives each case its backend's context.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "core/types.h"
#include "op_test_util.h"
#include "ops/context.h"
#include "ops/memory.h"
#include "ops/tensor.h"

namespace embedserve::testing {

// One backend of the op API, the dtype its context computes in and the dtype of its GEMM weights: the CPU in f32
// with f32 weights (the parity mode) or bf16 weights; CUDA in f32 (the parity mode) and bf16.
struct Backend {
  Device device = Device::kCpu;
  DType dtype = DType::kF32;
  DType weights = DType::kF32;
};
// "cpu_f32", "cpu_bf16_weights", "cuda_bf16": gtest's name for the case
std::string backend_name(const Backend& b);
inline void PrintTo(const Backend& b, std::ostream* os) { *os << backend_name(b); }
std::vector<Backend> all_backends();

// A dense [rows, cols] tensor of `dtype` in a context's memory, allocated with ops::Buffer and filled with
// ops::copy_bytes_from_host: all bits set (NaN in f32 and bf16) until an op writes it.
// values (representable in t's dtype) into t: a dense f32 or bf16 tensor, a view of a larger buffer too.
Status upload(const ops::DeviceContext& ctx, std::span<const float> values, const ops::Tensor& t);

class DeviceTensor {
 public:
  DeviceTensor(const ops::DeviceContext& ctx, DType dtype, int64_t rows, int64_t cols);
  // With `values` (already representable in dtype) copied in.
  DeviceTensor(const ops::DeviceContext& ctx, DType dtype, int64_t rows, int64_t cols, std::span<const float> values);

  const ops::Tensor& operator*() const { return tensor_; }
  const ops::Tensor* operator->() const { return &tensor_; }
  void poison();
  void upload(std::span<const float> values);
  // The elements widened to f32 (exactly), NaN where nothing was written.
  std::vector<float> download() const;

 private:
  const ops::DeviceContext* ctx_;
  ops::Buffer buffer_;
  ops::Tensor tensor_;
};

// A batch's int32 arrays staged as the model stages them: add each, upload once, then read them back as Indexes.
class StagedIndices {
 public:
  explicit StagedIndices(const ops::DeviceContext& ctx) : ctx_(&ctx) {}
  size_t add(std::span<const int32_t> values);
  void upload();
  ops::Index operator[](size_t handle) const { return staging_.get(handle); }

 private:
  const ops::DeviceContext* ctx_;
  ops::IndexStaging staging_;
  ops::Buffer buffer_;
  size_t entries_ = 0;
};

// The suite's fixture: a context for the backend under test (made once per process and kept), or a skip where
// this machine has no GPU. A context that fails to start on a machine with a GPU is a failure, not a skip.
class OpTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override;
  const ops::DeviceContext& ctx() const { return *ctx_; }
  DType dtype() const { return GetParam().dtype; }
  DType weight_dtype() const { return GetParam().weights; }
  bool on_cpu() const { return GetParam().device == Device::kCpu; }
  DeviceTensor tensor(int64_t rows, int64_t cols) const { return {*ctx_, dtype(), rows, cols}; }
  DeviceTensor tensor(int64_t rows, int64_t cols, std::span<const float> values) const {
    return {*ctx_, dtype(), rows, cols, values};
  }
  std::vector<float> random(size_t n, uint32_t seed, float stddev = 1.0f, float mean = 0.0f) const {
    return random_values(dtype(), n, seed, stddev, mean);
  }
  // A GEMM weight (matrix): in the backend's weight dtype.
  DeviceTensor weight_tensor(int64_t rows, int64_t cols, std::span<const float> values) const {
    return {*ctx_, weight_dtype(), rows, cols, values};
  }
  std::vector<float> random_weights(size_t n, uint32_t seed, float stddev) const {
    return random_values(weight_dtype(), n, seed, stddev);
  }

 private:
  const ops::DeviceContext* ctx_ = nullptr;
  std::unique_ptr<ops::ScopedDevice> device_;
};

// Instantiates a fixture derived from OpTest on every backend, named by backend ("Backends/OpSuite.Add/cuda_bf16").
#define EMBEDSERVE_INSTANTIATE_ON_EVERY_BACKEND(fixture)                                            \
  INSTANTIATE_TEST_SUITE_P(Backends, fixture, ::testing::ValuesIn(::embedserve::testing::all_backends()), \
                           [](const auto& info) { return ::embedserve::testing::backend_name(info.param); })

}  // namespace embedserve::testing
