// attention_bench: ops::attention's speed in TFLOP/s on a GPU, at the 4B's heads (32 q, 8 kv, head_dim 128) over
// token batches of equal-length sequences, each row a query under the causal mask — the work of a prefill.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "bench_util.h"
#include "ops/attention.h"
#include "ops/context.h"
#include "ops/memory.h"

namespace {

namespace ops = embedserve::ops;

using embedserve::bench::check;
using embedserve::bench::value;

// Random bf16 bits of N(0, 1)-ish values: the kernel's speed does not depend on them, but NaNs would hide errors.
std::vector<uint16_t> random_bf16(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<uint16_t> out(n);
  for (auto& x : out) {
    const float f = dist(rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    x = static_cast<uint16_t>(bits >> 16);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  // Usage: attention_bench [tokens per batch (default 32768)] [sequence lengths, comma separated]
  const int64_t tokens = argc > 1 ? std::atoll(argv[1]) : 32768;
  const std::vector<int> lengths = argc > 2 ? embedserve::bench::comma_list(argv[2])
                                            : std::vector<int>{512, 2048, 8192, 32768};
  ops::ContextOptions options;
  options.device = embedserve::Device::kCuda;
  options.precision = embedserve::Precision::kBF16;
  const auto ctx = value(ops::DeviceContext::create(options), "context");
  const ops::AttentionShape shape{32, 8, 128, 1.0f / std::sqrt(128.0f)};
  const int64_t q_dim = int64_t{shape.heads} * shape.head_dim, kv_dim = int64_t{shape.kv_heads} * shape.head_dim;
  std::printf("%s\nheads %d/%d, head_dim %d, causal, every row a query\n", ctx->description().c_str(), shape.heads,
              shape.kv_heads, shape.head_dim);
  for (int len : lengths) {
    const int64_t n_seqs = std::max<int64_t>(1, tokens / len), n = n_seqs * len;
    ops::Buffer qb = value(ops::Buffer::allocate(*ctx, n * q_dim * 2, "q"), "q");
    ops::Buffer kb = value(ops::Buffer::allocate(*ctx, n * kv_dim * 2, "k"), "k");
    ops::Buffer vb = value(ops::Buffer::allocate(*ctx, n * kv_dim * 2, "v"), "v");
    ops::Buffer ob = value(ops::Buffer::allocate(*ctx, n * q_dim * 2, "out"), "out");
    const auto hq = random_bf16(n * q_dim, 1), hk = random_bf16(n * kv_dim, 2), hv = random_bf16(n * kv_dim, 3);
    check(ops::copy_bytes_from_host(*ctx, hq.data(), qb.data(), hq.size() * 2), "q upload");
    check(ops::copy_bytes_from_host(*ctx, hk.data(), kb.data(), hk.size() * 2), "k upload");
    check(ops::copy_bytes_from_host(*ctx, hv.data(), vb.data(), hv.size() * 2), "v upload");
    std::vector<int32_t> offsets = {0}, positions;
    for (int64_t s = 0; s < n_seqs; ++s) {
      offsets.push_back(static_cast<int32_t>(offsets.back() + len));
      for (int p = 0; p < len; ++p) positions.push_back(p);
    }
    ops::IndexStaging staging;
    const size_t off_h = staging.add(offsets), pos_h = staging.add(positions);
    const size_t plan_h = staging.add(ops::attention_plan(*ctx, offsets));
    ops::Buffer ib = value(ops::Buffer::allocate(*ctx, (offsets.size() * 2 + positions.size() + 2 * n) * 4, "idx"),
                           "indices");
    check(staging.upload(*ctx, ib, "indices"), "indices upload");
    const ops::SequenceRows rows{staging.get(off_h), staging.get(pos_h)};
    const auto q = qb.matrix(embedserve::DType::kBF16, n, q_dim), out = ob.matrix(embedserve::DType::kBF16, n, q_dim);
    const auto k = kb.matrix(embedserve::DType::kBF16, n, kv_dim), v = vb.matrix(embedserve::DType::kBF16, n, kv_dim);
    auto run = [&] { check(ops::attention(*ctx, q, k, v, out, shape, rows, rows.offsets, staging.get(plan_h)), "attention"); };
    run();
    check(ctx->synchronize(), "warm-up");
    // A hash of the output's bits (FNV-1a), so two builds of the kernel can be compared bit for bit.
    std::vector<uint16_t> host_out(n * q_dim);
    check(ops::copy_bytes_to_host(*ctx, ob.data(), host_out.data(), host_out.size() * 2), "out download");
    uint64_t hash = 1469598103934665603ull;
    for (uint16_t x : host_out) hash = (hash ^ x) * 1099511628211ull;
    // Enough calls for ~0.5 s, timed as a whole (the host checks of each call overlap the GPU's work).
    const double flops = 4.0 * shape.head_dim * shape.heads * double(n_seqs) * (double(len) * (len + 1) / 2);
    const int calls = std::clamp(static_cast<int>(0.5 / (flops / 300e12)), 3, 20000);  // short ones: launch-bound
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) run();
    check(ctx->synchronize(), "timed calls");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls;
    std::printf("%6d tokens x %4lld sequences: %8.3f ms  %6.1f TFLOP/s (causal FLOPs: 4·hd·heads·L(L+1)/2)"
                "  out %016llx\n",
                len, static_cast<long long>(n_seqs), s * 1e3, flops / s / 1e12, static_cast<unsigned long long>(hash));
  }
  return 0;
}
