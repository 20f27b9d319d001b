// Memory on a context's device: owned buffers, weight uploads, and the one host-to-device copy of a batch's indices.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// Bytes on a context's device, freed with the Buffer (host memory on the CPU, cudaMalloc on CUDA; never managed
// memory). Not zero-filled: every op writes before it reads.
class Buffer {
 public:
  Buffer() = default;
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  ~Buffer();
  // `what` names the buffer in the out-of-memory error, which also says which flag makes it smaller.
  static StatusOr<Buffer> allocate(const DeviceContext& ctx, size_t bytes, const std::string& what);
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  // A [rows, cols] view of this buffer's start in `dtype`; rows·cols elements must fit.
  Tensor matrix(DType dtype, int64_t rows, int64_t cols) const;

 private:
  void release();
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_ = Device::kCpu;
  int ordinal_ = 0;
};

// A checkpoint tensor in host memory as stored (possibly unaligned: a mapped safetensors tensor).
struct HostMatrix {
  const void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // elements from one row's start to the next; 0: cols (dense). A column slice is strided.
  // An FP8 checkpoint's weight (dtype kF8E4M3): its weight_scale, f32 or bf16, one for the whole tensor
  // (scale_count 1) or one per row, i.e. per output channel (scale_count rows).
  const void* scales = nullptr;
  DType scale_dtype = DType::kF32;
  int64_t scale_count = 0;
  int64_t row_stride() const { return stride > 0 ? stride : cols; }
  // Rows [begin, begin + n): still dense where the matrix is.
  HostMatrix row_slice(int64_t begin, int64_t n) const {
    const bool per_row = scales && scale_count == rows;  // an FP8 checkpoint's per-channel scales follow the rows
    return {static_cast<const char*>(data) + begin * row_stride() * static_cast<int64_t>(dtype_size(dtype)), dtype, n,
            cols, stride,
            per_row ? static_cast<const char*>(scales) + begin * static_cast<int64_t>(dtype_size(scale_dtype)) : scales,
            scale_dtype, per_row ? n : scale_count};
  }
  // Columns [begin, begin + n) of every row (a tensor-parallel rank's share of a row-parallel weight).
  HostMatrix column_slice(int64_t begin, int64_t n) const {
    return {static_cast<const char*>(data) + begin * static_cast<int64_t>(dtype_size(dtype)), dtype, rows, n,
            row_stride(), scales, scale_dtype, scale_count};
  }
};

// A weight on the device, and the memory holding it (none when it is a view of the host mapping).
struct Weight {
  Buffer memory;
  Tensor tensor;
};

// Copies `parts` (same cols), stacked by rows, to the device in ctx.weight_dtype() (a matrix) or ctx.dtype() (a
// vector): bf16 copies as stored where that is bf16, everything else is widened exactly to f32 on the host first
// (and rounded to bf16 once for bf16: a loss the user chose by picking bf16 for an f16/f32 checkpoint). An fp8
// context quantises each row to e4m3 with its own scale (Tensor::scales), or copies an FP8 checkpoint's codes and
// scales as stored. Stacking is how fused
// projections (gate|up) become one GEMM. One tensor at a time; a model loads through WeightUploader
// (ops/weight_upload.h), which copies all of them in parallel.
StatusOr<Weight> upload_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts, const std::string& name);
// The embedding table: a copy, in the stored dtype on the CPU (widened exactly at lookup), in ctx.dtype() on a GPU.
StatusOr<Weight> embedding_table(const DeviceContext& ctx, const HostMatrix& table, const std::string& name);
// A small f32 vector (RoPE's inv_freq) on the device.
StatusOr<Weight> upload_f32(const DeviceContext& ctx, std::span<const float> values, const std::string& name);

// Copies a device tensor (dense) of f32 to the host and waits for it.
Status copy_to_host(const DeviceContext& ctx, const Tensor& src, std::span<float> dst);
// Copies host f32 values into a dense device tensor (tests and tools).
Status copy_from_host(const DeviceContext& ctx, std::span<const float> src, const Tensor& dst);
// The same for any element type, as raw bytes (tests).
Status copy_bytes_to_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes);
Status copy_bytes_from_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes);

// The int32 arrays one batch needs on the device, gathered on the host and sent in one copy.
class IndexStaging {
 public:
  // Appends `values`; the handle names them in get() once upload() has run.
  size_t add(std::span<const int32_t> values);
  // Copies everything added to `dst` (which must be large enough: it is never moved) on the context's stream:
  // one copy per batch.
  Status upload(const DeviceContext& ctx, Buffer& dst, const std::string& what);
  Index get(size_t handle) const;
  void clear();

 private:
  std::vector<int32_t> host_;
  std::vector<std::pair<size_t, size_t>> parts_;  // (offset, size) per handle
  const int32_t* device_ = nullptr;
};

}  // namespace embedserve::ops
