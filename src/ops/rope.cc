// rotary_table and qk_norm_rope: tables of cos/sin once per batch (on the host for the CPU, by a kernel on CUDA).
#include "ops/rope.h"

#include <string>

#include "ops/check.h"
#include "ops/cpu/kernels.h"
#include "ops/rms_norm.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_context.h"
#include "ops/cuda/rms_norm_cuda.h"
#endif

namespace embedserve::ops {

size_t rotary_table_bytes(const DeviceContext& ctx, int64_t n, int head_dim) {
  // cos/sin once per batch instead of once per layer and head: [n, head_dim / 2] each, f32. (On the 4B's
  // 16k-token batches, computing them in the rotation kernel made it compute-bound: 2 TB/s against 4 for the
  // other element-wise kernels; the table is read from L2.)
  (void)ctx;
  return static_cast<size_t>(n) * static_cast<size_t>(head_dim) * sizeof(float);
}

StatusOr<RotaryTable> rotary_table(const DeviceContext& ctx, const Index& positions, const Tensor& inv_freq,
                                   int head_dim, void* scratch) {
  if (head_dim < 2 || head_dim % 2 != 0) return internal_error("rotary_table: head_dim must be even");
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("rotary_table", "inv_freq", inv_freq, 1, head_dim / 2));
  if (inv_freq.dtype != DType::kF32) return internal_error("rotary_table: inv_freq must be f32");
  EMBEDSERVE_RETURN_IF_ERROR(expect_index("rotary_table", "positions", positions, positions.size()));
  RotaryTable t;
  t.positions = positions;
  t.inv_freq = inv_freq.as<const float>();
  t.head_dim = head_dim;
  if (!scratch && positions.size() > 0) return internal_error("rotary_table: no scratch for the tables");
  t.cos = static_cast<float*>(scratch);
  t.sin = t.cos + positions.size() * (head_dim / 2);
  if (ctx.device() == Device::kCpu) {
    cpu::rope_tables(positions.host, std::span<const float>(t.inv_freq, static_cast<size_t>(head_dim / 2)), t.cos, t.sin);
    return t;
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  // Launched on the context's stream ahead of the batch's layers (outside a recorded graph, which reads the table
  // from this fixed scratch when it replays).
  EMBEDSERVE_RETURN_IF_ERROR(cuda_backend::by_dtype(ctx.dtype(), "rotary_table", [&](auto tag) {
    using T = decltype(tag);
    return cuda::rope_tables<T>(positions.device, t.inv_freq, positions.size(), head_dim / 2, t.cos, t.sin,
                                cuda_backend::stream(ctx));
  }));
  return t;
#else
  return no_backend("rotary_table");
#endif
}

namespace {

// Checks one tensor of qk_norm_rope and returns its heads.
StatusOr<int> checked_heads(const DeviceContext& ctx, const char* name, const Tensor& x, const Tensor& norm_weight,
                            const RotaryTable& rotary) {
  const int hd = rotary.head_dim;
  if (hd < 2 || x.cols % hd != 0) return internal_error(std::string("qk_norm_rope: ") + name + "'s rows are not whole heads");
  EMBEDSERVE_RETURN_IF_ERROR(expect_index("qk_norm_rope", "positions", rotary.positions, x.rows));
  EMBEDSERVE_RETURN_IF_ERROR(expect_shape("qk_norm_rope", "norm_weight", norm_weight, 1, hd));
  EMBEDSERVE_RETURN_IF_ERROR(expect_dtype("qk_norm_rope", ctx, {{name, &x}, {"norm_weight", &norm_weight}}));
  return static_cast<int>(x.cols / hd);
}

// The CPU: q_norm / k_norm normalise each head's row — x [n, heads * hd] seen as [n * heads, hd] where it is dense,
// else head by head as [n, hd] column views (the same per-row arithmetic) — then the rotation.
Status cpu_norm_rope(const DeviceContext& ctx, const Tensor& x, const Tensor& norm_weight, int heads, float eps,
                     const RotaryTable& rotary) {
  const int hd = rotary.head_dim;
  if (x.dense()) {
    EMBEDSERVE_RETURN_IF_ERROR(rms_norm(ctx, x.reshaped(hd), norm_weight, eps, x.reshaped(hd)));
  } else {
    for (int head = 0; head < heads; ++head) {
      const Tensor xh = x.columns(int64_t{head} * hd, hd);
      EMBEDSERVE_RETURN_IF_ERROR(rms_norm(ctx, xh, norm_weight, eps, xh));
    }
  }
  cpu::apply_rope(x.as<float>(), rotary.cos, rotary.sin, x.rows, heads, hd, x.stride);
  return Status();
}

// One or two tensors (b.data null: one) of the same rows.
Status norm_rope(const DeviceContext& ctx, const Tensor& a, const Tensor& a_weight, const Tensor* b,
                 const Tensor* b_weight, float eps, const RotaryTable& rotary) {
  EMBEDSERVE_ASSIGN_OR_RETURN(const int a_heads, checked_heads(ctx, "x", a, a_weight, rotary));
  int b_heads = 0;
  if (b) {
    EMBEDSERVE_ASSIGN_OR_RETURN(b_heads, checked_heads(ctx, "q", *b, *b_weight, rotary));
    if (b->rows != a.rows) return internal_error("qk_norm_rope: k and q have different rows");
  }
  if (ctx.device() == Device::kCpu) {
    EMBEDSERVE_RETURN_IF_ERROR(cpu_norm_rope(ctx, a, a_weight, a_heads, eps, rotary));
    return b ? cpu_norm_rope(ctx, *b, *b_weight, b_heads, eps, rotary) : Status();
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  return cuda_backend::by_dtype(a.dtype, "qk_norm_rope", [&](auto tag) {
    using T = decltype(tag);
    const cuda::NormRopeHeads<T> pa{a.as<T>(), a.stride, a_weight.as<const T>(), a_heads};
    const cuda::NormRopeHeads<T> pb = b ? cuda::NormRopeHeads<T>{b->as<T>(), b->stride, b_weight->as<const T>(), b_heads}
                                        : cuda::NormRopeHeads<T>{};
    return cuda::qk_norm_rope(pa, pb, rotary.cos, rotary.sin, a.rows, rotary.head_dim, eps, cuda_backend::stream(ctx));
  });
#else
  return no_backend("qk_norm_rope");
#endif
}

}  // namespace

Status qk_norm_rope(const DeviceContext& ctx, const Tensor& x, const Tensor& norm_weight, float eps,
                    const RotaryTable& rotary) {
  return norm_rope(ctx, x, norm_weight, nullptr, nullptr, eps, rotary);
}

Status qk_norm_rope(const DeviceContext& ctx, const Tensor& k, const Tensor& k_norm, const Tensor& q,
                    const Tensor& q_norm, float eps, const RotaryTable& rotary) {
  return norm_rope(ctx, k, k_norm, &q, &q_norm, eps, rotary);
}

}  // namespace embedserve::ops
