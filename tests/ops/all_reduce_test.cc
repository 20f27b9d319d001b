// ops::all_reduce over a tensor-parallel group: rank threads of one process on the CPU, NCCL over two GPUs (skipped
// with fewer; run on the GPU machine), against the ranks' partials summed on the host.
#include "ops/all_reduce.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "op_suite_util.h"
#include "op_test_util.h"
#include "ops/communicator.h"
#include "ops/context.h"

namespace embedserve {
namespace {

using testing::DeviceTensor;

struct Group {
  std::vector<std::unique_ptr<ops::DeviceContext>> contexts;  // index = rank
};

// One context per rank of a new group on `device` (CUDA: GPUs 0 … ranks − 1), computing in `precision`; on CUDA
// summing by NCCL's all-reduce unless peer_reads.
Group make_group(Device device, int ranks, Precision precision, DType reduce = DType::kF32, bool peer_reads = false) {
  ops::GroupOptions go;
  go.device = device;
  go.ranks = ranks;
  go.peer_reads = peer_reads;
  for (int r = 0; device == Device::kCuda && r < ranks; ++r) go.ordinals.push_back(r);
  if (const char* nccl = std::getenv("EMBEDSERVE_NCCL_PATH")) go.nccl_path = nccl;  // as cli/ passes it
  auto comms = ops::create_group(go);
  testing::check(comms.status(), "create_group");
  Group g;
  for (int r = 0; r < ranks; ++r) {
    ops::ContextOptions o;
    o.device = device;
    o.ordinal = device == Device::kCuda ? r : 0;
    o.precision = precision;
    o.communicator = (*comms)[static_cast<size_t>(r)];
    o.tp_reduce_dtype = reduce;
    if (const char* cublas = std::getenv("EMBEDSERVE_CUBLAS_PATH")) o.cublas_path = cublas;
    auto ctx = ops::DeviceContext::create(o);
    testing::check(ctx.status(), "DeviceContext::create");
    g.contexts.push_back(std::move(ctx).value());
  }
  return g;
}

// Runs body(rank) on one thread per rank (every rank must enter a collective for any to leave it), each with its
// context's device current.
// A set-up failure on a rank's thread (testing::check throws) becomes the test's failure, not std::terminate, and
// aborts the group so that the other ranks do not wait for it.
template <typename F>
void on_every_rank(const Group& g, F&& body) {
  std::vector<std::thread> threads;
  std::vector<std::string> failures(g.contexts.size());
  for (size_t r = 0; r < g.contexts.size(); ++r)
    threads.emplace_back([&, r] {
      try {
        const ops::ScopedDevice on(*g.contexts[r]);
        body(r);
      } catch (const std::exception& e) {
        failures[r] = e.what();
        for (const auto& ctx : g.contexts) ctx->communicator()->abort();  // no rank waits for this one
      }
    });
  for (std::thread& t : threads) t.join();
  for (size_t r = 0; r < failures.size(); ++r)
    if (!failures[r].empty()) ADD_FAILURE() << "rank " << r << ": " << failures[r];
}

// Each rank's partial [rows, cols] f32 in `partial_dtype` is replaced by the sum over the ranks, and `sum` (the
// context's dtype) gets it rounded once; the CPU adds ranks in rank order, so every rank holds the same bits as the
// host's sum in that order.
void expect_sums(Device device, int ranks, Precision precision, DType partial_dtype) {
  const Group g = make_group(device, ranks, precision);
  const int64_t rows = 37, cols = 13;  // odd sizes: slices of unequal length per rank
  const size_t n = static_cast<size_t>(rows * cols);
  std::vector<std::vector<float>> partials;
  for (int r = 0; r < ranks; ++r)
    partials.push_back(testing::random_values(partial_dtype, n, 100 + static_cast<uint32_t>(r)));
  std::vector<float> want(n);
  for (size_t i = 0; i < n; ++i) {
    float s = partials[0][i];
    for (int r = 1; r < ranks; ++r) s += partials[static_cast<size_t>(r)][i];
    want[i] = testing::round_to(g.contexts[0]->dtype(), s);
  }
  // Each rank's tensors are made, reduced and read on its own thread, with its GPU current.
  std::vector<std::unique_ptr<DeviceTensor>> partial(static_cast<size_t>(ranks)), sum(static_cast<size_t>(ranks));
  std::vector<Status> results(static_cast<size_t>(ranks));
  std::vector<std::vector<float>> got(static_cast<size_t>(ranks));
  on_every_rank(g, [&](size_t r) {
    const ops::DeviceContext& ctx = *g.contexts[r];
    partial[r] = std::make_unique<DeviceTensor>(ctx, partial_dtype, rows, cols, partials[r]);
    if (partial_dtype != ctx.dtype()) sum[r] = std::make_unique<DeviceTensor>(ctx, ctx.dtype(), rows, cols);
    const DeviceTensor& out = sum[r] ? *sum[r] : *partial[r];
    results[r] = ops::all_reduce(ctx, **partial[r], *out);
    if (results[r].ok()) results[r] = ctx.synchronize();
    if (results[r].ok()) got[r] = out.download();
  });
  for (size_t r = 0; r < static_cast<size_t>(ranks); ++r) {
    ASSERT_TRUE(testing::succeeded(results[r])) << "rank " << r;
    EXPECT_TRUE(testing::same_bits(got[r], want)) << "rank " << r << " of " << ranks;
  }
}

// `sums` pairs of random partials in `partial_dtype` ([sum * 2 + rank]) and, per sum, the host's a + b rounded once
// into `dtype`: what two ranks' all-reduce gives in either order.
struct TwoRankSums {
  std::vector<std::vector<float>> partials, want;
};
TwoRankSums two_rank_sums(DType partial_dtype, DType dtype, size_t n, size_t sums, uint32_t seed) {
  TwoRankSums t;
  for (uint32_t k = 0; k < 2 * sums; ++k) t.partials.push_back(testing::random_values(partial_dtype, n, seed + k));
  t.want.assign(sums, std::vector<float>(n));
  for (size_t k = 0; k < sums; ++k)
    for (size_t i = 0; i < n; ++i) t.want[k][i] = testing::round_to(dtype, t.partials[2 * k][i] + t.partials[2 * k + 1][i]);
  return t;
}

// start_all_reduce twice before either is finished, finished in the opposite order (the model's overlapped halves
// keep up to four sums in flight): f32 partials, each sum the host's (two ranks: either order of a + b), rounded once
// into the context's dtype.
void expect_started_sums(Device device, Precision precision) {
  const Group g = make_group(device, 2, precision);
  const int64_t rows = 29, cols = 17;
  const TwoRankSums sums = two_rank_sums(DType::kF32, g.contexts[0]->dtype(), static_cast<size_t>(rows * cols), 2, 300);
  const auto &partials = sums.partials, &want = sums.want;
  std::vector<Status> results(2);
  std::vector<std::vector<std::vector<float>>> got(2);
  on_every_rank(g, [&](size_t r) {
    const ops::DeviceContext& ctx = *g.contexts[r];
    std::vector<std::unique_ptr<DeviceTensor>> partial, sum;
    for (size_t k = 0; k < 2; ++k) {
      partial.push_back(std::make_unique<DeviceTensor>(ctx, DType::kF32, rows, cols, partials[2 * k + r]));
      sum.push_back(std::make_unique<DeviceTensor>(ctx, ctx.dtype(), rows, cols));
    }
    // f32 contexts sum in place; bf16 ones round into the separate sum.
    const auto out = [&](size_t k) -> const DeviceTensor& { return ctx.dtype() == DType::kF32 ? *partial[k] : *sum[k]; };
    auto first = ops::start_all_reduce(ctx, **partial[0], *out(0));
    auto second = ops::start_all_reduce(ctx, **partial[1], *out(1));
    Status st = first.ok() ? second.status() : first.status();
    if (st.ok()) st = ops::finish_all_reduce(ctx, *second);
    if (st.ok()) st = ops::finish_all_reduce(ctx, *first);
    if (st.ok()) st = ctx.synchronize();
    results[r] = st;
    if (st.ok()) got[r] = {out(0).download(), out(1).download()};
  });
  for (size_t r = 0; r < 2; ++r) {
    ASSERT_TRUE(testing::succeeded(results[r])) << "rank " << r;
    for (size_t k = 0; k < 2; ++k) EXPECT_TRUE(testing::same_bits(got[r][k], want[k])) << "rank " << r << ", sum " << k;
  }
}

TEST(AllReduce, StartedSumsFinishedInAnyOrderOnCpuRankThreads) { expect_started_sums(Device::kCpu, Precision::kF32); }

TEST(AllReduce, CudaStartedSumsRunBesideTheComputeStreamAndFinishInAnyOrder) {
  if (ops::visible_gpus() < 2) GTEST_SKIP() << "needs two GPUs (" << ops::visible_gpus() << " visible)";
  expect_started_sums(Device::kCuda, Precision::kBF16);
  expect_started_sums(Device::kCuda, Precision::kF32);
}

TEST(AllReduce, CpuRankThreadsSumEveryRanksPartialInRankOrder) {
  for (int ranks : {1, 2, 3, 4}) expect_sums(Device::kCpu, ranks, Precision::kF32, DType::kF32);
}

// A rank waiting in a collective for a rank that failed before reaching it is released with an error by abort(),
// and the group works again after reset(): a failed batch must not hang the engine.
TEST(AllReduce, AnAbortedCpuGroupReleasesTheRankWaitingAndResets) {
  const Group g = make_group(Device::kCpu, 2, Precision::kF32);
  DeviceTensor x(*g.contexts[0], DType::kF32, 4, 4, std::vector<float>(16, 1.0f));
  Status waited;
  std::thread waiter([&] { waited = ops::all_reduce(*g.contexts[0], *x, *x); });
  g.contexts[1]->communicator()->abort();  // rank 1 "failed": it will never call all_reduce
  waiter.join();
  EXPECT_EQ(waited.code(), ErrorCode::kUnavailable) << waited.to_string();
  ASSERT_TRUE(g.contexts[0]->communicator()->reset());
  expect_sums(Device::kCpu, 2, Precision::kF32, DType::kF32);  // a fresh group, as a control
  DeviceTensor y(*g.contexts[1], DType::kF32, 4, 4, std::vector<float>(16, 2.0f));
  std::vector<Status> results(2);
  on_every_rank(g, [&](size_t r) { results[r] = ops::all_reduce(*g.contexts[r], r == 0 ? *x : *y, r == 0 ? *x : *y); });
  ASSERT_TRUE(testing::succeeded(results[0]));
  ASSERT_TRUE(testing::succeeded(results[1]));
  EXPECT_EQ(x.download(), std::vector<float>(16, 3.0f));
  EXPECT_EQ(y.download(), std::vector<float>(16, 3.0f));
}

TEST(AllReduce, RanksDisagreeingOnTheSizeAllFailAlike) {
  const Group g = make_group(Device::kCpu, 2, Precision::kF32);
  DeviceTensor a(*g.contexts[0], DType::kF32, 4, 4, std::vector<float>(16, 1.0f));
  DeviceTensor b(*g.contexts[1], DType::kF32, 2, 4, std::vector<float>(8, 1.0f));
  std::vector<Status> results(2);
  on_every_rank(g, [&](size_t r) { results[r] = ops::all_reduce(*g.contexts[r], r == 0 ? *a : *b, r == 0 ? *a : *b); });
  EXPECT_EQ(results[0].code(), ErrorCode::kInternal);
  EXPECT_EQ(results[1].code(), ErrorCode::kInternal);
}

// NCCL over two GPUs: f32 partials summed into a bf16 context's tensor (the model's path: one rounding, as a single
// GPU's GEMM rounds its output once), bf16 partials in place (EMBEDSERVE_TP_REDUCE=bf16), and f32 in place (the
// parity mode). Two ranks: a + b is the same in any order, so the result is bitwise the host's.
TEST(AllReduce, CudaNcclSumsF32PartialsIntoTheContextsDtype) {
  if (ops::visible_gpus() < 2) GTEST_SKIP() << "needs two GPUs (" << ops::visible_gpus() << " visible)";
  expect_sums(Device::kCuda, 2, Precision::kBF16, DType::kF32);
  expect_sums(Device::kCuda, 2, Precision::kBF16, DType::kBF16);
  expect_sums(Device::kCuda, 2, Precision::kF32, DType::kF32);
}

// Sums by peer reads over two GPUs (each reads the other's partial over NVLink): each rank shares a buffer of two
// halves and four sums alternate between them, so each half is written again after the other half's sum. Each sum
// is the host's a + b rounded once into the sum's dtype, bitwise, on both ranks.
void expect_peer_sums(Precision precision, DType partial_dtype) {
  const Group g = make_group(Device::kCuda, 2, precision, partial_dtype, /*peer_reads=*/true);
  ASSERT_TRUE(ops::reads_peers(*g.contexts[0])) << g.contexts[0]->communicator()->description();
  const int64_t rows = 37, cols = 24;  // 16-byte loads
  constexpr size_t kSums = 4;
  const TwoRankSums sums =
      two_rank_sums(partial_dtype, g.contexts[0]->dtype(), static_cast<size_t>(rows * cols), kSums, 500);
  const auto &partials = sums.partials, &want = sums.want;
  std::vector<Status> results(2);
  std::vector<std::vector<std::vector<float>>> got(2);
  on_every_rank(g, [&](size_t r) {
    const ops::DeviceContext& ctx = *g.contexts[r];
    const DeviceTensor shared(ctx, partial_dtype, 2 * rows, cols);
    DeviceTensor sum(ctx, ctx.dtype(), rows, cols);
    Status st = ops::share_partials(ctx, shared->data, static_cast<size_t>(shared->bytes()));
    for (size_t k = 0; k < kSums && st.ok(); ++k) {
      const ops::Tensor half = shared->rows_range(static_cast<int64_t>(k % 2) * rows, rows);
      st = testing::upload(ctx, partials[2 * k + r], half);
      sum.poison();
      if (st.ok()) st = ops::all_reduce(ctx, half, *sum);
      if (st.ok()) st = ctx.synchronize();
      if (st.ok()) got[r].push_back(sum.download());
    }
    results[r] = st;
    if (!st.ok())  // the other rank may be waiting in a sum this one never reaches
      for (const auto& c : g.contexts) c->communicator()->abort();
  });
  for (size_t r = 0; r < 2; ++r) {
    ASSERT_TRUE(testing::succeeded(results[r])) << "rank " << r;
    for (size_t k = 0; k < kSums; ++k) EXPECT_TRUE(testing::same_bits(got[r][k], want[k])) << "rank " << r << ", sum " << k;
  }
}

TEST(AllReduce, CudaPeerReadsSumEachRanksPartialAsTheHostDoes) {
  if (ops::visible_gpus() < 2) GTEST_SKIP() << "needs two GPUs (" << ops::visible_gpus() << " visible)";
  expect_peer_sums(Precision::kBF16, DType::kBF16);  // the engine's default: bf16 partials
  expect_peer_sums(Precision::kBF16, DType::kF32);   // EMBEDSERVE_TP_REDUCE=f32: one rounding
  expect_peer_sums(Precision::kF32, DType::kF32);    // the parity mode
}

// The sum fused with the residual add and the norm after it (what a peer group's decoder layer runs) gives the bits
// of the two ops one after the other under NCCL: the residual and the normed rows, on both ranks. Rows of 1,024
// (8 bf16 per load) and of 20 (element by element); f32 partials and bf16 ones.
void expect_fused_sum_norm(DType partial_dtype, int64_t cols) {
  const int64_t rows = 37;
  const size_t n = static_cast<size_t>(rows * cols);
  std::vector<std::vector<float>> partials;
  for (uint32_t r = 0; r < 2; ++r) partials.push_back(testing::random_values(partial_dtype, n, 700 + r));
  const std::vector<float> residual = testing::random_values(DType::kBF16, n, 710);
  const std::vector<float> weight = testing::random_values(DType::kBF16, static_cast<size_t>(cols), 711);
  const float eps = 1e-6f;
  // [group][rank]: the residual after the add, then the normed rows
  std::vector<std::vector<std::vector<float>>> got(2, std::vector<std::vector<float>>(2));
  for (int peer = 0; peer < 2; ++peer) {
    const Group g = make_group(Device::kCuda, 2, Precision::kBF16, partial_dtype, /*peer_reads=*/peer == 1);
    ASSERT_EQ(ops::reads_peers(*g.contexts[0]), peer == 1) << g.contexts[0]->communicator()->description();
    std::vector<Status> results(2);
    on_every_rank(g, [&](size_t r) {
      const ops::DeviceContext& ctx = *g.contexts[r];
      // Peers: the partial in the first half of a shared buffer. NCCL: bf16 partials are summed in place, so the
      // output starts as the partial there.
      const DeviceTensor shared(ctx, partial_dtype, 2 * rows, cols);
      const DeviceTensor x(ctx, DType::kBF16, rows, cols, residual), w(ctx, DType::kBF16, 1, cols, weight);
      const bool in_place = !peer && partial_dtype != DType::kF32;
      const DeviceTensor out(ctx, DType::kBF16, rows, cols);
      const ops::Tensor partial = in_place ? *out : shared->rows_range(0, rows);
      Status st = ops::share_partials(ctx, shared->data, shared->bytes());
      if (st.ok()) st = testing::upload(ctx, partials[r], partial);
      if (st.ok()) st = ops::all_reduce_add_rms_norm(ctx, partial, *x, *w, eps, *out);
      if (st.ok()) st = ctx.synchronize();
      if (st.ok()) {
        got[static_cast<size_t>(peer)][r] = x.download();
        const auto normed = out.download();
        got[static_cast<size_t>(peer)][r].insert(got[static_cast<size_t>(peer)][r].end(), normed.begin(), normed.end());
      }
      results[r] = st;
      if (!st.ok())
        for (const auto& c : g.contexts) c->communicator()->abort();
    });
    for (size_t r = 0; r < 2; ++r) ASSERT_TRUE(testing::succeeded(results[r])) << (peer ? "peers" : "NCCL") << ", rank " << r;
  }
  for (size_t r = 0; r < 2; ++r)
    EXPECT_TRUE(testing::same_bits(got[1][r], got[0][r]))
        << dtype_name(partial_dtype) << " partials, " << cols << " columns, rank " << r;
}

TEST(AllReduce, CudaPeerReadsFuseTheSumWithTheResidualAddAndNormBitwise) {
  if (ops::visible_gpus() < 2) GTEST_SKIP() << "needs two GPUs (" << ops::visible_gpus() << " visible)";
  expect_fused_sum_norm(DType::kF32, 1024);
  expect_fused_sum_norm(DType::kBF16, 1024);
  expect_fused_sum_norm(DType::kF32, 20);
}

// Two sums in a row from the same half would let a rank overwrite a partial its peer still reads: refused on
// every rank alike, before anything is launched (so no rank waits for another).
TEST(AllReduce, CudaPeerReadsRefuseTwoSumsInARowFromOneHalf) {
  if (ops::visible_gpus() < 2) GTEST_SKIP() << "needs two GPUs (" << ops::visible_gpus() << " visible)";
  const Group g = make_group(Device::kCuda, 2, Precision::kBF16, DType::kF32, /*peer_reads=*/true);
  ASSERT_TRUE(ops::reads_peers(*g.contexts[0]));
  std::vector<Status> second(2);
  on_every_rank(g, [&](size_t r) {
    const ops::DeviceContext& ctx = *g.contexts[r];
    const DeviceTensor shared(ctx, DType::kF32, 16, 8, std::vector<float>(16 * 8, 1.0f));
    const DeviceTensor sum(ctx, ctx.dtype(), 8, 8);
    testing::check(ops::share_partials(ctx, shared->data, static_cast<size_t>(shared->bytes())), "share_partials");
    testing::check(ops::all_reduce(ctx, shared->rows_range(0, 8), *sum), "the first sum");
    second[r] = ops::all_reduce(ctx, shared->rows_range(0, 8), *sum);
    testing::check(ctx.synchronize(), "synchronize");
  });
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(second[r].code(), ErrorCode::kInternal) << second[r].to_string();
    EXPECT_NE(second[r].message().find("alternate"), std::string::npos) << second[r].message();
  }
}

// A rank that never reaches a sum (it failed) must not hold the others' GPUs for ever: the group's abort releases
// the kernel waiting for it, and the waiting rank's stream drains.
TEST(AllReduce, CudaPeerReadsAnAbortReleasesARankWaitingForOneThatNeverComes) {
  if (ops::visible_gpus() < 2) GTEST_SKIP() << "needs two GPUs (" << ops::visible_gpus() << " visible)";
  const Group g = make_group(Device::kCuda, 2, Precision::kBF16, DType::kF32, /*peer_reads=*/true);
  ASSERT_TRUE(ops::reads_peers(*g.contexts[0]));
  std::vector<std::unique_ptr<DeviceTensor>> shared;
  for (const auto& ctx : g.contexts) {
    const ops::ScopedDevice on(*ctx);
    shared.push_back(std::make_unique<DeviceTensor>(*ctx, DType::kF32, 16, 8));
    ASSERT_TRUE(testing::succeeded(ops::share_partials(*ctx, (*shared.back())->data, (*shared.back())->bytes())));
  }
  const ops::DeviceContext& ctx = *g.contexts[0];
  const ops::ScopedDevice on(ctx);
  const DeviceTensor sum(ctx, ctx.dtype(), 8, 8);
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(testing::succeeded(ops::all_reduce(ctx, (*shared[0])->rows_range(0, 8), *sum)));  // rank 1 never comes
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ctx.communicator()->abort();
  });
  const Status drained = ctx.synchronize();
  aborter.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(testing::succeeded(drained));
  EXPECT_GE(seconds, 0.29) << "the sum did not wait for rank 1";
  EXPECT_LT(seconds, 10.0) << "the abort did not release the waiting sum";
}

}  // namespace
}  // namespace embedserve
