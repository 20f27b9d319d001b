// attention: checks, then the CPU's blocked sgemm attention or CUDA's flash-style kernels over the staged plan.
#include "ops/attention.h"

#include <algorithm>
#include <string>

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/attention_cuda.h"
#include "ops/cuda/cuda_context.h"
#endif

namespace embedserve::ops {

Status check_attention_shape(const DeviceContext& ctx, const AttentionShape& shape) {
  if (shape.heads < 1 || shape.kv_heads < 1 || shape.heads % shape.kv_heads != 0 || shape.head_dim < 1)
    return invalid_argument("attention needs a positive number of heads that kv heads divide (heads " +
                            std::to_string(shape.heads) + ", kv heads " + std::to_string(shape.kv_heads) + ")");
  if (ctx.device() == Device::kCuda && (shape.head_dim % 2 != 0 || shape.head_dim > 256))
    return invalid_argument("the CUDA attention kernels take an even head_dim of at most 256, not " +
                            std::to_string(shape.head_dim) + "; use --device cpu");
  return Status();
}

std::vector<int32_t> attention_plan(const DeviceContext& ctx, std::span<const int32_t> q_offsets) {
  std::vector<int32_t> plan;
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() == Device::kCuda && !q_offsets.empty())
    cuda::attention_tiles(q_offsets.data(), static_cast<int64_t>(q_offsets.size()) - 1, &plan);
#else
  (void)ctx;
  (void)q_offsets;
#endif
  return plan;
}

int attention_kernel_choice(const DeviceContext& ctx, int32_t max_keys) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() == Device::kCuda && ctx.dtype() == DType::kBF16) {
    switch (cuda::attention_one_tile_keys(max_keys)) {
      case 16: return 1;
      case 32: return 2;
      case 64: return 3;
      default: return 0;
    }
  }
#else
  (void)max_keys;
#endif
  (void)ctx;
  return 0;
}

Status attention(const DeviceContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                 const AttentionShape& shape, const SequenceRows& q_rows, const Index& kv_offsets, const Index& plan) {
  const char* op = "attention";
  EMBEDSERVE_RETURN_IF_ERROR(check_attention_shape(ctx, shape));
  const int64_t q_dim = int64_t{shape.heads} * shape.head_dim, kv_dim = int64_t{shape.kv_heads} * shape.head_dim;
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "q", q, q_rows.num_rows(), q_dim));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "k", k, k.rows, kv_dim));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "v", v, k.rows, kv_dim));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape(op, "out", out, q.rows, q_dim));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dense(op, "out", out));
  if (k.stride != v.stride) return internal_error("attention: k and v must share a row stride");
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype(op, ctx, {{"q", &q}, {"k", &k}, {"v", &v}, {"out", &out}}));
  EMBEDSERVE_RETURN_IF_ERROR(expect_index(op, "kv_offsets", kv_offsets, q_rows.offsets.size()));
  EMBEDSERVE_RETURN_IF_ERROR(expect_index(op, "q_rows.offsets", q_rows.offsets, kv_offsets.size()));
  if (kv_offsets.size() < 2) return internal_error("attention: the offsets name no sequence");
  if (kv_offsets.host.back() != k.rows || q_rows.offsets.host.back() != q.rows)
    return internal_error("attention: offsets do not cover q and k");
  // A query row sees keys 0..position of its own sequence: a position at or past the sequence's length would read
  // the next sequence's keys (or past k and v).
  int32_t max_keys = 0;  // the most keys a row sees: CUDA picks its kernel by it
  for (int64_t s = 0; s + 1 < kv_offsets.size(); ++s) {
    const int32_t length = kv_offsets.host[s + 1] - kv_offsets.host[s];
    for (int32_t r = q_rows.offsets.host[s]; r < q_rows.offsets.host[s + 1]; ++r) {
      if (q_rows.positions.host[r] < 0 || q_rows.positions.host[r] >= length)
        return internal_error("attention: q_rows.positions[" + std::to_string(r) + "] = " +
                              std::to_string(q_rows.positions.host[r]) + " is outside its sequence of " +
                              std::to_string(length) + " keys");
      max_keys = std::max(max_keys, q_rows.positions.host[r] + 1);
    }
  }
  if (ctx.device() == Device::kCpu) {
    cpu::attention(q.as<const float>(), k.as<const float>(), v.as<const float>(), out.as<float>(), shape, q.stride,
                   k.stride, q_rows.offsets.host, q_rows.positions.host, kv_offsets.host);
    return Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  // The plan decides which rows run: it must be this batch's (a stale one would skip rows or read past them).
  const std::vector<int32_t> expected = attention_plan(ctx, q_rows.offsets.host);
  if (plan.size() != static_cast<int64_t>(expected.size()) ||
      !std::equal(expected.begin(), expected.end(), plan.host.begin()))
    return internal_error("attention: plan is not attention_plan(q_rows.offsets) of this batch");
  if (plan.size() > 0 && plan.device == nullptr) return internal_error("attention: the plan was not staged");
  const cuda::AttentionShape cs{shape.heads, shape.kv_heads, shape.head_dim, shape.scale, q.stride, k.stride, max_keys};
  return cuda_backend::by_dtype(q.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    return cuda::attention(q.as<const T>(), k.as<const T>(), v.as<const T>(), out.as<T>(), cs, q_rows.offsets.device,
                           q_rows.positions.device, kv_offsets.device, plan.device, plan.size() / 2,
                           cuda_backend::stream(ctx));
  });
#else
  (void)plan;
  return no_backend(op);
#endif
}

}  // namespace embedserve::ops
