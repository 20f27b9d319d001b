// Tensor parallelism through the Engine interface: a model split over 2 or 4 ranks (rank threads on the CPU; GPUs
// where at least two are visible) gives the vectors of the unsplit model, whole and in chunks, and a split the
// model's heads do not allow is refused before anything loads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "engine_test_util.h"
#include "engine/engine_factory.h"
#include "ops/context.h"
#include "test_files.h"
#include "tiny_qwen3.h"

namespace embedserve {
namespace {

using testing::embed;
using testing::random_ids;
using testing::spec_with_blas_sized_rows;
using testing::TempDir;
using testing::TinyQwen3Spec;

struct Backend {
  Device device;
  Precision precision;
  // Least cosine between a split model's vector and the unsplit one's. Not bitwise: a rank sums its share of
  // o_proj's and down_proj's inputs, and the all-reduce adds the ranks' sums, an order the single GEMM does not use.
  // f32 throughout: that reordering alone (~1e-7). bf16 activations (CUDA) or bf16-rounded GEMM inputs (the CPU's
  // AVX512-BF16 kernel): a last-bit difference can flip an activation's rounding to bf16 at the next GEMM, a 2^-8
  // step of one element. A wrong head, column or missing all-reduce moves the cosine below 0.9.
  double min_cosine;
  std::string name() const {
    return std::string(device == Device::kCpu ? "cpu" : "cuda") + (precision == Precision::kBF16 ? " bf16" : " f32");
  }
};

std::vector<Backend> backends() {
  std::vector<Backend> b = {{Device::kCpu, Precision::kF32, 0.99999}, {Device::kCpu, Precision::kBF16, 0.9999}};
  if (ops::visible_gpus() >= 2) {
    b.push_back({Device::kCuda, Precision::kF32, 0.99999});
    b.push_back({Device::kCuda, Precision::kBF16, 0.999});
  }
  return b;
}

// CUDA: the ranks sum by peer reads unless peer_reads is false (NCCL's all-reduce, which the overlap modes
// overlap_tokens and gemm_chunks need).
std::unique_ptr<Engine> make_engine(const std::filesystem::path& dir, const Backend& backend, int ranks,
                                    size_t workspace = 512, size_t overlap_tokens = 4096, int gemm_chunks = 1,
                                    bool peer_reads = true) {
  EngineOptions options;
  options.tp_peer_reads = peer_reads;
  options.tp_overlap_tokens = overlap_tokens;
  options.tp_gemm_chunks = gemm_chunks;
  options.model_dir = dir;
  options.device = backend.device;
  options.precision = backend.precision;
  options.workspace_tokens = workspace;
  options.tensor_parallel = ranks;
  if (const char* nccl = std::getenv("EMBEDSERVE_NCCL_PATH")) options.nccl_path = nccl;  // as cli/ passes them
  if (const char* cublas = std::getenv("EMBEDSERVE_CUBLAS_PATH")) options.cublas_path = cublas;
  auto engine = create_engine(options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

// Row by row: the least cosine between a's and b's vectors.
double min_cosine(const std::vector<float>& a, const std::vector<float>& b, size_t hidden) {
  double least = a.size() == b.size() && !a.empty() ? 1.0 : -1.0;
  for (size_t row = 0; row * hidden < a.size() && a.size() == b.size(); ++row) {
    double dot = 0, na = 0, nb = 0;
    for (size_t i = row * hidden; i < (row + 1) * hidden; ++i) {
      dot += double(a[i]) * b[i];
      na += double(a[i]) * a[i];
      nb += double(b[i]) * b[i];
    }
    const double c = dot / std::sqrt(na * nb);
    least = std::isnan(c) ? -1.0 : std::min(least, c);
  }
  return least;
}

std::vector<std::vector<int32_t>> mixed_batch(int vocab) {
  return {random_ids(1, vocab, 1), random_ids(9, vocab, 2), random_ids(70, vocab, 3), random_ids(33, vocab, 4)};
}

void expect_split_matches_whole(const TinyQwen3Spec& spec, std::initializer_list<int> rank_counts) {
  TempDir dir;
  testing::write_tiny_qwen3(dir.path(), spec);
  const auto inputs = mixed_batch(spec.vocab);
  for (const Backend& backend : backends()) {
    auto whole = make_engine(dir.path(), backend, 1);
    ASSERT_TRUE(whole);
    const auto want = embed(*whole, inputs);
    whole.reset();
    for (int ranks : rank_counts) {
      if (backend.device == Device::kCuda && ranks > ops::visible_gpus()) continue;
      auto split = make_engine(dir.path(), backend, ranks);
      ASSERT_TRUE(split);
      EXPECT_EQ(split->info().tensor_parallel, ranks);
      const double c = min_cosine(embed(*split, inputs), want, static_cast<size_t>(spec.hidden));
      EXPECT_GE(c, backend.min_cosine) << backend.name() << ", " << ranks << " ranks";
      std::printf("%s, %d ranks: least cosine to one rank %.9f\n", backend.name().c_str(), ranks, c);
    }
  }
}

TEST(TensorParallel, TheTinyModelSplitInTwoGivesTheVectorsOfOneRank) {
  TinyQwen3Spec spec;  // 4 heads, 2 kv heads, intermediate 40
  expect_split_matches_whole(spec, {2});
}

// The 0.6B's layer shape (hidden 1024, 16 heads and 8 kv heads of 128, intermediate 3072), two layers: the head and
// column slices land where the real model's do, over 2 and 4 ranks.
TEST(TensorParallel, TheRealLayerShapeSplitInTwoAndFourGivesTheVectorsOfOneRank) {
  TinyQwen3Spec spec;
  spec.hidden = 1024;
  spec.intermediate = 3072;
  spec.heads = 16;
  spec.kv_heads = 8;
  spec.head_dim = 128;
  spec.vocab = 300;
  spec.dtype = "BF16";
  expect_split_matches_whole(spec, {2, 4});
}

// Each rank keeps its own heads' keys and values between an input's chunks; other batches run between them.
TEST(TensorParallel, ChunksOfASplitModelGiveTheWholeInputsVector) {
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  const auto ids = random_ids(300, spec.vocab, 21), other = random_ids(17, spec.vocab, 22);
  for (const Backend& backend : backends()) {
    auto whole = make_engine(dir.path(), backend, 1);
    ASSERT_TRUE(whole);
    const auto want = embed(*whole, {ids});
    const auto other_want = embed(*whole, {other});
    whole.reset();
    auto split = make_engine(dir.path(), backend, 2);
    ASSERT_TRUE(split);
    ASSERT_TRUE(split->info().chunked_prefill);
    std::vector<float> out(static_cast<size_t>(spec.hidden), NAN);
    for (size_t start = 0; start < ids.size(); start += 128) {
      SequenceBatch batch;
      batch.add(std::span<const int32_t>(ids).subspan(start, std::min<size_t>(128, ids.size() - start)));
      batch.chunk = SequenceChunk{9, start, ids.size()};
      const Status st = split->embed(batch, out);
      ASSERT_TRUE(st.ok()) << st.to_string();
      EXPECT_EQ(split->sequences_in_progress(), start + 128 < ids.size() ? 1u : 0u);
      const double c = min_cosine(embed(*split, {other}), other_want, static_cast<size_t>(spec.hidden));
      EXPECT_GE(c, backend.min_cosine) << backend.name() << ": a batch between chunks";
    }
    EXPECT_GE(min_cosine(out, want, static_cast<size_t>(spec.hidden)), backend.min_cosine) << backend.name();
  }
}

// Tensor parallelism's overlap: a batch run as two halves of its rows, each half's all-reduces beside the other's
// compute, gives the vectors of the same batch run whole, wherever the split falls: inside an input (the second
// half's attention reads the first half's keys of it), on a boundary between inputs, inside a lone input, and in a
// batch of three rows.
TEST(TensorParallel, ABatchRunInOverlappedHalvesGivesTheVectorsOfTheWholeBatch) {
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  const int v = spec.vocab;
  const std::vector<std::vector<std::vector<int32_t>>> batches = {
      mixed_batch(v),                                                   // 113 rows, split at 64 inside the third
      {random_ids(64, v, 31), random_ids(64, v, 32)},                  // split at 64: between the two
      {random_ids(200, v, 33)},                                         // split at 128 of one input
      {random_ids(1, v, 34), random_ids(2, v, 35)},                     // split at 2, inside the second
      {random_ids(5, v, 36), random_ids(150, v, 37), random_ids(9, v, 38), random_ids(40, v, 39)},
  };
  const size_t hidden = static_cast<size_t>(spec.hidden);
  for (const Backend& backend : backends()) {
    auto whole = make_engine(dir.path(), backend, 2, 512, /*overlap_tokens=*/0, 1, /*peer_reads=*/false);
    auto halves = make_engine(dir.path(), backend, 2, 512, /*overlap_tokens=*/2, 1, /*peer_reads=*/false);
    auto one = make_engine(dir.path(), backend, 1);
    ASSERT_TRUE(whole && halves && one);
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto want = embed(*whole, batches[b]);
      const auto got = embed(*halves, batches[b]);
      const double c = min_cosine(got, want, hidden), c1 = min_cosine(got, embed(*one, batches[b]), hidden);
      EXPECT_GE(c, backend.min_cosine) << backend.name() << ", batch " << b;
      EXPECT_GE(c1, backend.min_cosine) << backend.name() << ", batch " << b << " against one rank";
      std::printf("%s, batch %zu in halves: least cosine to the whole batch %.9f, to one rank %.9f\n",
                  backend.name().c_str(), b, c, c1);
    }
  }
}

// A whole batch's row-parallel GEMMs in pieces of rows (EMBEDSERVE_TP_GEMM_CHUNKS), each piece's all-reduce beside
// the next piece's GEMM, give the vectors of one GEMM and one all-reduce: with a piece boundary inside an input and
// the inputs' boundaries inside pieces (the pieces' row groups).
TEST(TensorParallel, RowParallelGemmsInPiecesGiveTheVectorsOfOneGemm) {
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  const int v = spec.vocab;
  const std::vector<std::vector<std::vector<int32_t>>> batches = {
      {random_ids(700, v, 41), random_ids(324, v, 42)},  // 1,024 rows: 4 pieces of 256, the boundary at 700 in the 3rd
      {random_ids(1, v, 43), random_ids(9, v, 44), random_ids(70, v, 45), random_ids(33, v, 46),
       random_ids(600, v, 47)},                            // 713 rows: 2 pieces split at 320, inside the last input
  };
  const size_t hidden = static_cast<size_t>(spec.hidden);
  for (const Backend& backend : backends()) {
    auto one_gemm = make_engine(dir.path(), backend, 2, 2048, /*overlap_tokens=*/0, /*gemm_chunks=*/1, false);
    auto pieces = make_engine(dir.path(), backend, 2, 2048, /*overlap_tokens=*/0, /*gemm_chunks=*/4, false);
    ASSERT_TRUE(one_gemm && pieces);
    for (size_t b = 0; b < batches.size(); ++b) {
      const double c = min_cosine(embed(*pieces, batches[b]), embed(*one_gemm, batches[b]), hidden);
      EXPECT_GE(c, backend.min_cosine) << backend.name() << ", batch " << b;
      std::printf("%s, batch %zu in GEMM pieces: least cosine to one GEMM %.9f\n", backend.name().c_str(), b, c);
    }
  }
}

// GPUs that sum by reading each other's partials (inside the residual add and norm) give NCCL's bits: both add the
// two partials in f32 (a + b in either order) and round once (bf16 partials by default, f32 ones on an f32
// context). Mixed batches, a pooled last layer and a chunked input (its own sequence of sums).
TEST(TensorParallel, CudaSumsByPeerReadsGiveTheBitsOfNcclsAllReduce) {
  if (ops::visible_gpus() < 2) GTEST_SKIP() << "needs two GPUs (" << ops::visible_gpus() << " visible)";
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  const int v = spec.vocab;
  const std::vector<std::vector<std::vector<int32_t>>> batches = {
      mixed_batch(v), {random_ids(64, v, 51), random_ids(64, v, 52)}, {random_ids(1, v, 53)}};
  const auto chunked = random_ids(300, v, 54);
  // The input in chunks of 128 (keys_only layers, a kept cache), as the scheduler cuts one.
  const auto in_chunks = [&](Engine& engine) {
    std::vector<float> out(static_cast<size_t>(spec.hidden), NAN);
    for (size_t start = 0; start < chunked.size(); start += 128) {
      SequenceBatch batch;
      batch.add(std::span<const int32_t>(chunked).subspan(start, std::min<size_t>(128, chunked.size() - start)));
      batch.chunk = SequenceChunk{7, start, chunked.size()};
      const Status st = engine.embed(batch, out);
      EXPECT_TRUE(st.ok()) << st.to_string();
    }
    return out;
  };
  for (const Backend& backend : backends()) {
    if (backend.device != Device::kCuda) continue;
    auto peer = make_engine(dir.path(), backend, 2, 512, 4096, 1, /*peer_reads=*/true);
    auto nccl = make_engine(dir.path(), backend, 2, 512, 4096, 1, /*peer_reads=*/false);
    ASSERT_TRUE(peer && nccl);
    EXPECT_NE(peer->info().backend.find("peer reads"), std::string::npos) << peer->info().backend;
    EXPECT_EQ(nccl->info().backend.find("peer reads"), std::string::npos) << nccl->info().backend;
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto got = embed(*peer, batches[b]), want = embed(*nccl, batches[b]);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
          << backend.name() << ", batch " << b << ": least cosine " << min_cosine(got, want, spec.hidden);
    }
    const auto got = in_chunks(*peer), want = in_chunks(*nccl);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << backend.name() << ", in chunks";
  }
}

// An input whose keys and values some rank has no room for is refused before any rank starts it (every rank
// reserves its share first: a rank failing inside the forward pass would leave the others in a collective), and the
// group serves on.
TEST(TensorParallel, AnInputARankHasNoRoomForIsRefusedAndTheGroupServesOn) {
  TempDir dir;
  TinyQwen3Spec spec;
  // A context no machine holds: 2^24 tokens × 4 layers × 2 kv heads of 2,048 floats = 1 TiB each of k and v.
  spec.max_position = 1 << 24;
  spec.layers = 4;
  spec.head_dim = 2048;
  testing::write_tiny_qwen3(dir.path(), spec);
  const Backend cpu{Device::kCpu, Precision::kF32, 0.99999};
  auto split = make_engine(dir.path(), cpu, 2);
  ASSERT_TRUE(split);
  const auto ids = random_ids(64, spec.vocab, 5);
  SequenceBatch batch;
  batch.add(ids);
  batch.chunk = SequenceChunk{3, 0, size_t{1} << 24};
  std::vector<float> out(static_cast<size_t>(spec.hidden), NAN);
  const Status st = split->embed(batch, out);
  EXPECT_EQ(st.code(), ErrorCode::kResourceExhausted) << st.to_string();
  EXPECT_NE(st.message().find("tensor-parallel rank 0"), std::string::npos) << st.to_string();
  EXPECT_EQ(split->sequences_in_progress(), 0u);
  auto one = make_engine(dir.path(), cpu, 1);
  ASSERT_TRUE(one);
  EXPECT_GE(min_cosine(embed(*split, {ids}), embed(*one, {ids}), static_cast<size_t>(spec.hidden)), cpu.min_cosine);
}

TEST(TensorParallel, ASplitTheHeadsDoNotAllowIsRefusedNamingTheOnesThatDo) {
  TempDir dir;
  TinyQwen3Spec spec;  // 4 heads, 2 kv heads: 1 or 2 ranks
  testing::write_tiny_qwen3(dir.path(), spec);
  for (int ranks : {3, 4}) {
    EngineOptions options;
    options.model_dir = dir.path();
    options.device = Device::kCpu;
    options.tensor_parallel = ranks;
    auto engine = create_engine(options);
    ASSERT_FALSE(engine.ok());
    EXPECT_EQ(engine.status().code(), ErrorCode::kInvalidArgument);
    const std::string& m = engine.status().message();
    EXPECT_NE(m.find("--tp " + std::to_string(ranks)), std::string::npos) << m;
    EXPECT_NE(m.find("2 key/value heads"), std::string::npos) << m;
    EXPECT_NE(m.find("use --tp 1, 2"), std::string::npos) << m;
  }
}

// The split engine holds each rank's share: the layers' weights once over all ranks, the embedding table and norms
// on every rank.
TEST(TensorParallel, EachRankHoldsItsShareOfTheLayers) {
  TempDir dir;
  TinyQwen3Spec spec;
  spec.dtype = "BF16";
  testing::write_tiny_qwen3(dir.path(), spec);
  const Backend cpu{Device::kCpu, Precision::kBF16, 0};
  auto one = make_engine(dir.path(), cpu, 1);
  auto two = make_engine(dir.path(), cpu, 2);
  ASSERT_TRUE(one && two);
  // Replicated on the second rank: the bf16 table [vocab, hidden] and f32 norms (2 per layer of hidden, 2 of head_dim,
  // the final norm).
  const size_t table = size_t(spec.vocab) * spec.hidden * 2;
  const size_t norms = (size_t(spec.layers) * (2 * spec.hidden + 2 * spec.head_dim) + spec.hidden) * 4;
  EXPECT_EQ(two->info().weight_bytes, one->info().weight_bytes + table + norms);
  EXPECT_NE(two->info().backend.find("rank 1"), std::string::npos) << two->info().backend;
  ASSERT_EQ(two->info().ranks.size(), 2u);
  EXPECT_EQ(two->info().ranks[0].memory_bytes + two->info().ranks[1].memory_bytes, two->info().memory_bytes);
  ASSERT_EQ(one->info().ranks.size(), 1u);
  EXPECT_EQ(one->info().ranks[0].memory_bytes, one->info().memory_bytes);
}

}  // namespace
}  // namespace embedserve
