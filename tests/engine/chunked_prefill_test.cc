// Chunked prefill through the Engine interface: an input embedded in chunks (keys and values kept between them,
// other batches run in between) gets the vector of the whole input, on the CPU and on CUDA where a GPU is.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
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

using testing::random_ids;
using testing::spec_with_blas_sized_rows;
using testing::TempDir;
using testing::TinyQwen3Spec;

struct Backend {
  Device device;
  Precision precision;
  // Whether chunks must give the whole input's bits. CUDA bf16: its GEMM rounds a row the same at any row count
  // and its attention reads the cached keys in the same order. The f32 backends split GEMMs per sequence
  // (OpenBLAS without AVX-512, cuBLAS SGEMM), whose rounding may follow the row count: a chunk and the whole input
  // then differ in the last bits, within f32 parity tolerance. The CPU's bf16 weights: its GEMMs round a row the
  // same at any row count, but a chunk's attention over the cached keys is not bitwise the whole input's (as in
  // the CPU's f32 mode, ~1e-7), and such a last-bit difference in an activation can flip its rounding to bf16 at
  // the next GEMM's input (a 2^-8 step of one element): measured up to 1.2e-5 per component (chunks of 33),
  // bitwise at the other chunk sizes. A wrong position or a missed key moves components by 1e-2 or more.
  bool bitwise;
  double tolerance = 2e-6;  // largest difference per component of the unit vector where not bitwise
  std::string name() const {
    return std::string(device == Device::kCpu ? "cpu" : "cuda") + (precision == Precision::kBF16 ? " bf16" : " f32");
  }
};

std::vector<Backend> backends() {
  std::vector<Backend> b = {{Device::kCpu, Precision::kF32, false}, {Device::kCpu, Precision::kBF16, false, 1e-4}};
  if (ops::visible_gpus() > 0) {
    b.push_back({Device::kCuda, Precision::kF32, false});
    b.push_back({Device::kCuda, Precision::kBF16, true});
  }
  return b;
}

std::unique_ptr<Engine> make_engine(const std::filesystem::path& dir, const Backend& backend, size_t workspace) {
  EngineOptions options;
  options.model_dir = dir;
  options.device = backend.device;
  options.precision = backend.precision;
  options.workspace_tokens = workspace;
  auto engine = create_engine(options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

std::vector<float> embed_whole(Engine& engine, const std::vector<int32_t>& ids) { return testing::embed(engine, {ids}); }

// Runs chunk [start, start + len) of `ids` as input `sequence`; `out` is written at the last chunk only.
Status embed_chunk(Engine& engine, uint64_t sequence, const std::vector<int32_t>& ids, size_t start, size_t len,
                   std::vector<float>& out) {
  SequenceBatch batch;
  batch.add(std::span<const int32_t>(ids).subspan(start, len));
  batch.chunk = SequenceChunk{sequence, start, ids.size()};
  out.resize(engine.info().hidden_size);
  return engine.embed(batch, out);
}

std::vector<float> embed_in_chunks(Engine& engine, const std::vector<int32_t>& ids, size_t chunk) {
  std::vector<float> out(engine.info().hidden_size, NAN);
  for (size_t start = 0; start < ids.size(); start += chunk) {
    const Status st = embed_chunk(engine, 7, ids, start, std::min(chunk, ids.size() - start), out);
    EXPECT_TRUE(st.ok()) << st.to_string();
    if (start + chunk < ids.size()) {
      EXPECT_TRUE(std::isnan(out[0])) << "a chunk before the last wrote a vector";
    }
  }
  return out;
}

double max_abs_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double d = a.size() == b.size() ? 0 : INFINITY;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(double(a[i]) - b[i]));
  return std::isnan(d) ? INFINITY : d;
}

void expect_same_vector(const Backend& backend, const std::vector<float>& chunked, const std::vector<float>& whole,
                        const std::string& what) {
  if (backend.bitwise) {
    EXPECT_EQ(0, std::memcmp(chunked.data(), whole.data(), whole.size() * sizeof(float))) << backend.name() << ": " << what;
  } else {
    // f32 throughout: a chunk's GEMMs differ from the whole input's in rounding only. A unit vector's components
    // then differ by about one f32 ulp (1e-7, measured); a wrong position or a
    // missed key moves them by 1e-2 or more. (The CPU's bf16 weights: see Backend::bitwise.)
    const double d = max_abs_difference(chunked, whole);
    EXPECT_LE(d, backend.tolerance) << backend.name() << ": " << what;
    if (d > 0) std::printf("%s, %s: largest difference %.3g\n", backend.name().c_str(), what.c_str(), d);
  }
}

TEST(ChunkedPrefill, ChunksGiveTheWholeInputsVectorOnEveryBackend) {
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  for (const Backend& backend : backends()) {
    auto engine = make_engine(dir.path(), backend, 1024);
    ASSERT_TRUE(engine);
    ASSERT_TRUE(engine->info().chunked_prefill) << "last-token pooling takes chunks";
    const auto ids = random_ids(700, spec.vocab, 21);
    const auto whole = embed_whole(*engine, ids);
    // Chunk sizes aligned to the attention's query blocks and not, down to a single token per chunk at the end.
    for (size_t chunk : {256, 100, 699, 64, 33}) {
      expect_same_vector(backend, embed_in_chunks(*engine, ids, chunk), whole, "chunks of " + std::to_string(chunk));
      EXPECT_EQ(engine->sequences_in_progress(), 0u) << "the last chunk frees the input's keys and values";
    }
  }
}

// Between two chunks of one input the engine runs other batches and other inputs' chunks: none disturbs another.
TEST(ChunkedPrefill, OtherBatchesAndInputsRunBetweenChunks) {
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  for (const Backend& backend : backends()) {
    auto engine = make_engine(dir.path(), backend, 512);
    ASSERT_TRUE(engine);
    const auto a = random_ids(500, spec.vocab, 31), b = random_ids(300, spec.vocab, 32);
    const auto short_text = random_ids(9, spec.vocab, 33);
    const auto a_whole = embed_whole(*engine, a), b_whole = embed_whole(*engine, b);
    const auto short_alone = embed_whole(*engine, short_text);

    std::vector<float> a_out(spec.hidden, NAN), b_out(spec.hidden, NAN);
    ASSERT_TRUE(embed_chunk(*engine, 1, a, 0, 200, a_out).ok());
    ASSERT_TRUE(embed_chunk(*engine, 2, b, 0, 128, b_out).ok());
    EXPECT_EQ(engine->sequences_in_progress(), 2u);
    const auto short_between = embed_whole(*engine, short_text);
    ASSERT_TRUE(embed_chunk(*engine, 1, a, 200, 200, a_out).ok());
    ASSERT_TRUE(embed_chunk(*engine, 2, b, 128, 172, b_out).ok());
    ASSERT_TRUE(embed_chunk(*engine, 1, a, 400, 100, a_out).ok());
    EXPECT_EQ(engine->sequences_in_progress(), 0u);

    expect_same_vector(backend, a_out, a_whole, "input a, interleaved");
    expect_same_vector(backend, b_out, b_whole, "input b, interleaved");
    EXPECT_EQ(0, std::memcmp(short_between.data(), short_alone.data(), spec.hidden * sizeof(float)))
        << backend.name() << ": a whole batch between chunks gets its own bits";
  }
}

TEST(ChunkedPrefill, AnEndedInputIsFreedAndCannotContinue) {
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path(), backends().front(), 512);
  ASSERT_TRUE(engine);
  const auto ids = random_ids(300, spec.vocab, 41);
  std::vector<float> out;
  ASSERT_TRUE(embed_chunk(*engine, 5, ids, 0, 100, out).ok());
  EXPECT_EQ(engine->sequences_in_progress(), 1u);
  engine->end_sequence(5);
  EXPECT_EQ(engine->sequences_in_progress(), 0u);
  const Status st = embed_chunk(*engine, 5, ids, 100, 100, out);
  EXPECT_EQ(st.code(), ErrorCode::kInternal) << st.to_string();
  EXPECT_NE(st.message().find("does not continue"), std::string::npos) << st.to_string();
  // Starting again from token 0 under the same name works, and gives the whole input's vector.
  expect_same_vector(backends().front(), embed_in_chunks(*engine, ids, 128), embed_whole(*engine, ids), "restarted");
}

TEST(ChunkedPrefill, MalformedChunksAreRefusedBeforeTheModelRuns) {
  TempDir dir;
  const TinyQwen3Spec spec = spec_with_blas_sized_rows();
  testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path(), backends().front(), 256);
  ASSERT_TRUE(engine);
  const auto ids = random_ids(300, spec.vocab, 51);
  std::vector<float> out(2 * spec.hidden);
  {  // a chunk shares its batch with nothing
    SequenceBatch batch;
    batch.add(std::span<const int32_t>(ids).first(10));
    batch.add(std::span<const int32_t>(ids).first(5));
    batch.chunk = SequenceChunk{1, 0, ids.size()};
    EXPECT_EQ(engine->embed(batch, out).code(), ErrorCode::kInternal);
  }
  {  // nor runs past its input's length
    std::vector<float> one(spec.hidden);
    SequenceBatch batch;
    batch.add(std::span<const int32_t>(ids).first(10));
    batch.chunk = SequenceChunk{1, 295, ids.size()};
    EXPECT_EQ(engine->embed(batch, one).code(), ErrorCode::kInternal);
  }
  {  // nor names an input longer than the model's positions
    std::vector<float> one(spec.hidden);
    SequenceBatch batch;
    batch.add(std::span<const int32_t>(ids).first(10));
    batch.chunk = SequenceChunk{1, 0, static_cast<size_t>(spec.max_position) + 1};
    EXPECT_EQ(engine->embed(batch, one).code(), ErrorCode::kOutOfRange);
  }
  EXPECT_EQ(engine->sequences_in_progress(), 0u);
}

TEST(ChunkedPrefill, MeanPoolingTakesEveryInputWhole) {
  TempDir dir;
  TinyQwen3Spec spec = spec_with_blas_sized_rows();
  spec.pooling = "mean";
  testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path(), backends().front(), 256);
  ASSERT_TRUE(engine);
  EXPECT_FALSE(engine->info().chunked_prefill);
  const auto ids = random_ids(100, spec.vocab, 61);
  std::vector<float> out;
  const Status st = embed_chunk(*engine, 1, ids, 0, 50, out);
  EXPECT_EQ(st.code(), ErrorCode::kInternal);
  EXPECT_NE(st.message().find("whole"), std::string::npos) << st.to_string();
}

}  // namespace
}  // namespace embedserve
