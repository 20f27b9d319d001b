// The op suite's harness: one context per backend, device tensors and indices through the op API's memory calls.
#include "op_suite_util.h"

#include <map>

namespace embedserve::testing {

std::string backend_name(const Backend& b) {
  if (b.weights != b.dtype) return std::string(device_name(b.device)) + "_" + dtype_name(b.weights) + "_weights";
  return std::string(device_name(b.device)) + "_" + dtype_name(b.dtype);
}

std::vector<Backend> all_backends() {
  return {{Device::kCpu, DType::kF32, DType::kF32},
          {Device::kCpu, DType::kF32, DType::kBF16},
          {Device::kCuda, DType::kF32, DType::kF32},
          {Device::kCuda, DType::kBF16, DType::kBF16}};
}

DeviceTensor::DeviceTensor(const ops::DeviceContext& ctx, DType dtype, int64_t rows, int64_t cols) : ctx_(&ctx) {
  auto buffer = ops::Buffer::allocate(ctx, static_cast<size_t>(rows * cols) * dtype_size(dtype), "a test tensor");
  check(buffer.status(), "allocating a [" + std::to_string(rows) + ", " + std::to_string(cols) + "] tensor");
  buffer_ = std::move(buffer).value();
  tensor_ = buffer_.matrix(dtype, rows, cols);
  poison();
}

DeviceTensor::DeviceTensor(const ops::DeviceContext& ctx, DType dtype, int64_t rows, int64_t cols,
                           std::span<const float> values)
    : DeviceTensor(ctx, dtype, rows, cols) {
  upload(values);
}

void DeviceTensor::poison() {
  const std::vector<unsigned char> ones(tensor_.bytes(), 0xff);
  check(ops::copy_bytes_from_host(*ctx_, ones.data(), tensor_.data, ones.size()), "poisoning a tensor");
}

Status upload(const ops::DeviceContext& ctx, std::span<const float> values, const ops::Tensor& t) {
  if (static_cast<int64_t>(values.size()) != t.numel())
    return internal_error("upload: " + std::to_string(values.size()) + " values for " + std::to_string(t.numel()) +
                          " elements");
  if (t.dtype == DType::kF32) return ops::copy_bytes_from_host(ctx, values.data(), t.data, t.bytes());
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) bits[i] = bf16_bits(values[i]);
  return ops::copy_bytes_from_host(ctx, bits.data(), t.data, t.bytes());
}

void DeviceTensor::upload(std::span<const float> values) {
  check(testing::upload(*ctx_, values, tensor_), "uploading a tensor");
}

std::vector<float> DeviceTensor::download() const {
  std::vector<float> out(static_cast<size_t>(tensor_.numel()));
  if (tensor_.dtype == DType::kF32) {
    check(ops::copy_bytes_to_host(*ctx_, tensor_.data, out.data(), tensor_.bytes()), "downloading a tensor");
    return out;
  }
  std::vector<uint16_t> bits(out.size());
  check(ops::copy_bytes_to_host(*ctx_, tensor_.data, bits.data(), tensor_.bytes()), "downloading a tensor");
  for (size_t i = 0; i < out.size(); ++i) out[i] = from_bf16_bits(bits[i]);
  return out;
}

size_t StagedIndices::add(std::span<const int32_t> values) {
  entries_ += values.size();
  return staging_.add(values);
}

void StagedIndices::upload() {
  // The buffer is sized here for everything added: IndexStaging copies into the buffer it is given.
  const size_t bytes = entries_ * sizeof(int32_t);
  if (buffer_.bytes() < bytes) {
    auto buffer = ops::Buffer::allocate(*ctx_, bytes, "test indices");
    check(buffer.status(), "allocating the indices");
    buffer_ = std::move(buffer).value();
  }
  check(staging_.upload(*ctx_, buffer_, "test indices"), "staging the indices");
}

namespace {

struct Made {
  std::unique_ptr<ops::DeviceContext> ctx;
  std::string why;
};
std::map<std::string, Made>& contexts() {
  static std::map<std::string, Made> made;
  return made;
}

// The contexts go before main returns: destroyed among the statics at exit they would outlive the CUDA runtime's
// own teardown, and compute-sanitizer's leak check would report their stream, handle and buffers.
class ContextsEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { contexts().clear(); }
};
const ::testing::Environment* const kContextsEnvironment =
    ::testing::AddGlobalTestEnvironment(new ContextsEnvironment);

// One context per backend for the whole process: a CUDA context loads cuBLAS and makes a stream, which every
// case would otherwise repeat. nullptr with the reason where it cannot be made.
const ops::DeviceContext* shared_context(const Backend& b, std::string* why) {
  auto& made = contexts();
  auto [it, fresh] = made.try_emplace(backend_name(b));
  if (fresh) {
    ops::ContextOptions options;
    options.device = b.device;
    options.precision = b.weights == DType::kBF16 ? Precision::kBF16 : Precision::kF32;
    auto ctx = ops::DeviceContext::create(options);
    if (ctx.ok())
      it->second.ctx = std::move(ctx).value();
    else
      it->second.why = ctx.status().to_string();
  }
  *why = it->second.why;
  return it->second.ctx.get();
}

}  // namespace

void OpTest::SetUp() {
  if (GetParam().device == Device::kCuda && ops::visible_gpus() == 0)
    GTEST_SKIP() << (ops::cuda_built() ? "no GPU visible" : "built without CUDA");
  std::string why;
  ctx_ = shared_context(GetParam(), &why);
  ASSERT_NE(ctx_, nullptr) << "cannot make a " << backend_name(GetParam()) << " context: " << why;
  ASSERT_EQ(ctx_->dtype(), dtype());
  ASSERT_EQ(ctx_->weight_dtype(), weight_dtype());
  device_ = std::make_unique<ops::ScopedDevice>(*ctx_);
  ASSERT_TRUE(device_->status().ok()) << device_->status().to_string();
}

}  // namespace embedserve::testing
