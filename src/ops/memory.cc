// Buffers, weight uploads and batch index staging on either backend.
#include "ops/memory.h"

#include <cstring>
#include <new>
#include <string>

#include "ops/convert.h"
#include "ops/weight_upload.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_memory.h"
#endif

namespace embedserve::ops {
namespace {

constexpr std::align_val_t kHostAlignment{64};  // a cache line: every row a SIMD kernel reads starts aligned

// Copies host bytes into device memory `dst` (a plain memcpy on the CPU).
Status to_device(const DeviceContext& ctx, const void* src, void* dst, size_t bytes) {
  if (ctx.device() == Device::kCpu) {
    std::memcpy(dst, src, bytes);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::copy_from_host(ctx, src, dst, bytes);
#else
  return unimplemented("no CUDA backend in this build");
#endif
}

}  // namespace

Buffer::Buffer(Buffer&& o) noexcept : data_(o.data_), bytes_(o.bytes_), device_(o.device_), ordinal_(o.ordinal_) {
  o.data_ = nullptr;
  o.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = o.data_;
    bytes_ = o.bytes_;
    device_ = o.device_;
    ordinal_ = o.ordinal_;
    o.data_ = nullptr;
    o.bytes_ = 0;
  }
  return *this;
}

Buffer::~Buffer() { release(); }

void Buffer::release() {
  if (!data_) return;
  if (device_ == Device::kCpu) {
    ::operator delete(data_, kHostAlignment);
  } else {
#if defined(EMBEDSERVE_HAVE_CUDA)
    cuda_backend::release(ordinal_, data_);
#endif
  }
  data_ = nullptr;
  bytes_ = 0;
}

StatusOr<Buffer> Buffer::allocate(const DeviceContext& ctx, size_t bytes, const std::string& what) {
  Buffer b;
  b.device_ = ctx.device();
  b.ordinal_ = ctx.ordinal();
  if (ctx.device() == Device::kCpu) {
    b.data_ = ::operator new(bytes ? bytes : 1, kHostAlignment, std::nothrow);
    if (!b.data_)
      return resource_exhausted("out of memory allocating " + std::to_string(bytes >> 20) + " MiB for " + what +
                                "; use a smaller --max-num-batched-tokens or --context-length");
  } else {
#if defined(EMBEDSERVE_HAVE_CUDA)
    EMBEDSERVE_RETURN_IF_ERROR(cuda_backend::allocate(ctx.ordinal(), bytes, what, &b.data_));
#else
    return unimplemented("no CUDA backend in this build");
#endif
  }
  b.bytes_ = bytes;
  return b;
}

Tensor Buffer::matrix(DType dtype, int64_t rows, int64_t cols) const {
  return Tensor::matrix(data_, dtype, rows, cols);
}

StatusOr<Weight> upload_weight(const DeviceContext& ctx, std::span<const HostMatrix> parts, const std::string& name) {
  WeightUploader up(ctx);
  EMBEDSERVE_ASSIGN_OR_RETURN(Weight w, up.add(parts, name));
  EMBEDSERVE_RETURN_IF_ERROR(up.finish(1));
  return w;
}

StatusOr<Weight> embedding_table(const DeviceContext& ctx, const HostMatrix& table, const std::string& name) {
  WeightUploader up(ctx);
  EMBEDSERVE_ASSIGN_OR_RETURN(Weight w, up.add_table(table, name));
  EMBEDSERVE_RETURN_IF_ERROR(up.finish(1));
  return w;
}

StatusOr<Weight> upload_f32(const DeviceContext& ctx, std::span<const float> values, const std::string& name) {
  Weight w;
  EMBEDSERVE_ASSIGN_OR_RETURN(w.memory, Buffer::allocate(ctx, values.size() * 4, name));
  w.tensor = w.memory.matrix(DType::kF32, 1, static_cast<int64_t>(values.size()));
  EMBEDSERVE_RETURN_IF_ERROR(to_device(ctx, values.data(), w.memory.data(), values.size() * 4));
  EMBEDSERVE_RETURN_IF_ERROR(ctx.synchronize());
  return w;
}

Status copy_bytes_to_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes) {
  if (ctx.device() == Device::kCpu) {
    std::memcpy(dst, src, bytes);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::copy_to_host(ctx, src, dst, bytes);
#else
  return unimplemented("no CUDA backend in this build");
#endif
}

Status copy_bytes_from_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes) {
  EMBEDSERVE_RETURN_IF_ERROR(to_device(ctx, src, dst, bytes));
  return ctx.synchronize();
}

Status copy_to_host(const DeviceContext& ctx, const Tensor& src, std::span<float> dst) {
  if (src.dtype != DType::kF32 || !src.dense() || static_cast<size_t>(src.numel()) != dst.size())
    return internal_error("copy_to_host: expected a dense f32 tensor of " + std::to_string(dst.size()) + " elements");
  return copy_bytes_to_host(ctx, src.data, dst.data(), dst.size() * 4);
}

Status copy_from_host(const DeviceContext& ctx, std::span<const float> src, const Tensor& dst) {
  if (dst.dtype != DType::kF32 || !dst.dense() || static_cast<size_t>(dst.numel()) != src.size())
    return internal_error("copy_from_host: expected a dense f32 tensor of " + std::to_string(src.size()) + " elements");
  return copy_bytes_from_host(ctx, src.data(), dst.data, src.size() * 4);
}

size_t IndexStaging::add(std::span<const int32_t> values) {
  parts_.emplace_back(host_.size(), values.size());
  host_.insert(host_.end(), values.begin(), values.end());
  return parts_.size() - 1;
}

Status IndexStaging::upload(const DeviceContext& ctx, Buffer& dst, const std::string& what) {
  if (ctx.device() == Device::kCpu) {  // the host arrays are what the CPU kernels read
    device_ = host_.data();
    return Status();
  }
  // Never grown here: recorded graphs hold dst's address, so it must stay put (callers size it for their largest
  // batch at load).
  const size_t bytes = host_.size() * sizeof(int32_t);
  if (dst.bytes() < bytes)
    return internal_error("IndexStaging: " + what + " holds " + std::to_string(dst.bytes()) + " bytes, the batch needs " +
                          std::to_string(bytes));
  EMBEDSERVE_RETURN_IF_ERROR(to_device(ctx, host_.data(), dst.data(), bytes));
  device_ = static_cast<const int32_t*>(dst.data());
  return Status();
}

Index IndexStaging::get(size_t handle) const {
  const auto [offset, size] = parts_[handle];
  return Index{std::span<const int32_t>(host_.data() + offset, size), device_ ? device_ + offset : nullptr};
}

void IndexStaging::clear() {
  host_.clear();
  parts_.clear();
  device_ = nullptr;
}

}  // namespace embedserve::ops
