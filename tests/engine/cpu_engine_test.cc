// The engine (CPU here; CUDA where a GPU is) through the Engine interface: create_engine's choices, EngineInfo, normalisation, batch
// invariance, vocabulary and budget checks, and a 3000-token input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "engine_test_util.h"
#include "engine/engine_factory.h"
#include "ops/context.h"
#include "reference_qwen3.h"
#include "test_files.h"
#include "tiny_qwen3.h"

namespace embedserve {
namespace {

using testing::TempDir;
using testing::TinyQwen3;
using testing::TinyQwen3Spec;

using testing::random_ids;

// The checkpoint in `dir` on `device` with a workspace of `workspace_tokens`, cuBLAS found as cli/ finds it.
EngineOptions engine_options(const std::filesystem::path& dir, Device device, size_t workspace_tokens) {
  EngineOptions options;
  options.model_dir = dir;
  options.device = device;
  options.workspace_tokens = workspace_tokens;
  if (const char* cublas = std::getenv("EMBEDSERVE_CUBLAS_PATH")) options.cublas_path = cublas;
  return options;
}

std::unique_ptr<Engine> make_engine(const std::filesystem::path& dir, size_t max_batch_tokens = 16384,
                                    Precision precision = Precision::kAuto) {
  EngineOptions options = engine_options(dir, Device::kCpu, max_batch_tokens);
  options.precision = precision;
  auto engine = create_engine(options);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  return engine.ok() ? std::move(engine).value() : nullptr;
}

using testing::embed;

using testing::cosine;

// "cuda" where it cannot run is a clear error pointing at --device cpu: without a GPU in a CUDA build
// (CI compiles CUDA but has no GPU), or in a build without CUDA.
TEST(CreateEngine, CudaWithoutAGpuOrCudaBuildIsAClearError) {
  EngineOptions options;
  options.model_dir = "/nonexistent";
  options.device = Device::kCuda;
if (ops::visible_gpus() > 0) GTEST_SKIP() << "a GPU is visible: the CUDA engine itself is tested by the parity suite";
  const ErrorCode expected = ops::cuda_built() ? ErrorCode::kUnavailable : ErrorCode::kUnimplemented;
  auto engine = create_engine(options);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), expected) << engine.status().to_string();
  EXPECT_NE(engine.status().message().find("--device cpu"), std::string::npos);
}

// The CPU keeps bf16 weights unless asked for f32 (the parity mode); the start-up line and /info say which.
TEST(CreateEngine, TheCpuKeepsBf16WeightsUnlessAskedForF32) {
  TempDir dir;
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir.path(), spec);
  for (Precision asked : {Precision::kAuto, Precision::kBF16, Precision::kF32}) {
    auto engine = make_engine(dir.path(), 64, asked);
    ASSERT_TRUE(engine);
    const EngineInfo& info = engine->info();
    const bool f32 = asked == Precision::kF32;
    EXPECT_EQ(info.precision, f32 ? Precision::kF32 : Precision::kBF16) << precision_name(asked);
    EXPECT_NE(info.backend.find(f32 ? "f32 weights and activations" : "bf16 weights, f32 activations"),
              std::string::npos)
        << info.backend;
    EXPECT_NE(info.backend.find(f32 ? "OpenBLAS" : "GEMMs: "), std::string::npos) << info.backend;
  }
}

// EMBEDSERVE_CPU_GEMM (EngineOptions::cpu_gemm_kernel) picks a kernel by name; a name it does not know, or a
// kernel this CPU cannot run, is an error that says what to do.
TEST(CreateEngine, AnUnknownCpuGemmKernelIsAClearError) {
  TempDir dir;
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir.path(), spec);
  EngineOptions options = engine_options(dir.path(), Device::kCpu, 64);
  options.cpu_gemm_kernel = "avx9000";
  auto engine = create_engine(options);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("EMBEDSERVE_CPU_GEMM"), std::string::npos) << engine.status().to_string();
  options.cpu_gemm_kernel = "portable";  // runs everywhere
  auto portable = create_engine(options);
  ASSERT_TRUE(portable.ok()) << portable.status().to_string();
  EXPECT_NE((*portable)->info().backend.find("portable"), std::string::npos) << (*portable)->info().backend;
}

TEST(CreateEngine, AMissingModelIsAnErrorNamingIt) {
  EngineOptions options;
  options.model_dir = "/nonexistent/model";  // device auto
  auto engine = create_engine(options);
  ASSERT_FALSE(engine.ok());
  EXPECT_NE(engine.status().message().find("/nonexistent/model"), std::string::npos) << engine.status().to_string();
}

TEST(CpuEngine, InfoDescribesTheCheckpoint) {
  TempDir dir;
  TinyQwen3Spec spec;
  spec.dtype = "BF16";
  spec.pooling = "mean";
  spec.normalize = false;
  testing::write_tiny_qwen3(dir.path(), spec);
  EngineOptions options;
  options.model_dir = dir.path();
  options.model_id = "org/tiny";
  options.workspace_tokens = 512;
  options.device = Device::kCpu;
  auto engine = create_engine(options);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  const EngineInfo& info = (*engine)->info();
  EXPECT_EQ(info.model_id, "org/tiny");
  EXPECT_EQ(info.architecture, "Qwen3Model");
  EXPECT_EQ(info.dtype, "bf16");
  EXPECT_EQ(info.device, Device::kCpu);
  EXPECT_EQ(info.precision, Precision::kBF16);  // the CPU's default: bf16 weights, f32 activations
  EXPECT_NE(info.backend.find("bf16 weights"), std::string::npos) << info.backend;
  EXPECT_EQ(info.hidden_size, spec.hidden);
  EXPECT_EQ(info.vocab_size, spec.vocab);
  EXPECT_EQ(info.max_position_embeddings, spec.max_position);
  EXPECT_EQ(info.pooling, Pooling::kMean);
  EXPECT_FALSE(info.normalize);
  EXPECT_EQ(info.workspace_tokens, 512u);
  EXPECT_GT(info.memory_bytes, 0u);
  EXPECT_EQ(info.query_seconds, 0.0);  // the CPU records no graphs, so no query is timed at load
}

// Where a GPU's graphs record, the load times one 16-token query's replay (serve's idle threads poll longer than
// it: scheduler/busy_poll.h); with graphs off nothing is timed.
TEST(CudaEngine, TimesOneQueryAtLoadWhereGraphsRecord) {
  if (ops::visible_gpus() == 0) GTEST_SKIP() << "no GPU visible";
  TempDir dir;
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir.path(), spec);
  EngineOptions options = engine_options(dir.path(), Device::kCuda, 256);
  auto recording = create_engine(options);
  ASSERT_TRUE(recording.ok()) << recording.status().to_string();
  EXPECT_GT((*recording)->info().query_seconds, 0.0);
  EXPECT_LT((*recording)->info().query_seconds, 1.0);
  options.graph_max_tokens = 0;
  auto live = create_engine(options);
  ASSERT_TRUE(live.ok()) << live.status().to_string();
  EXPECT_EQ((*live)->info().query_seconds, 0.0);
}

// The engine's numerical tests run in both CPU modes: f32 (the parity mode) and bf16 weights (the default).
class CpuEngineModes : public ::testing::TestWithParam<Precision> {
 protected:
  bool bf16() const { return GetParam() == Precision::kBF16; }
};

TEST_P(CpuEngineModes, VectorsMatchTheReferenceAndAreUnitLength) {
  TempDir dir;
  TinyQwen3Spec spec;
  spec.layers = 3;
  const TinyQwen3 tiny = testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path(), 16384, GetParam());
  ASSERT_TRUE(engine);
  const std::vector<std::vector<int32_t>> seqs = {random_ids(5, spec.vocab, 1), random_ids(40, spec.vocab, 2)};
  const auto out = embed(*engine, seqs);
  for (size_t s = 0; s < seqs.size(); ++s) {
    std::span<const float> v(out.data() + s * spec.hidden, spec.hidden);
    double norm = 0;
    for (float x : v) norm += double(x) * x;
    EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-6);
    EXPECT_GE(cosine(v, testing::reference_embedding(tiny, seqs[s])), testing::min_cpu_cosine(bf16()));
  }
}

// A sequence's vector must not depend on what else is in its batch: bitwise, alone and at several
// places among sequences of other lengths, in both modes (the bf16 kernels compute each row alike at any m).
TEST_P(CpuEngineModes, ASequenceGetsTheSameBitsAloneAndInAnyBatch) {
  TempDir dir;
  TinyQwen3Spec spec;
  spec.hidden = 64;
  spec.intermediate = 96;
  spec.heads = 4;
  spec.kv_heads = 1;
  spec.head_dim = 16;
  testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path(), 16384, GetParam());
  ASSERT_TRUE(engine);
  const auto text = random_ids(23, spec.vocab, 3);
  const auto alone = embed(*engine, {text});
  const std::vector<std::vector<std::vector<int32_t>>> batches = {
      {text, random_ids(1, spec.vocab, 4)},
      {random_ids(100, spec.vocab, 5), text},
      {random_ids(7, spec.vocab, 6), text, random_ids(300, spec.vocab, 7), random_ids(2, spec.vocab, 8)},
  };
  for (size_t b = 0; b < batches.size(); ++b) {
    const auto out = embed(*engine, batches[b]);
    size_t at = 0;
    while (batches[b][at] != text) ++at;
    EXPECT_EQ(0, std::memcmp(out.data() + at * spec.hidden, alone.data(), spec.hidden * sizeof(float))) << "batch " << b;
  }
}

TEST(CpuEngine, ARawVectorIsThePooledVectorAndItsBatchMatesKeepTheirBits) {
  // TEI's normalize: false: the sequences that ask for it get the pooled vector before the Normalize module; the
  // others get the same bits as in a batch where nobody asked.
  TempDir dir;
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path());
  ASSERT_TRUE(engine);
  ASSERT_TRUE(engine->info().normalize);
  const auto a = random_ids(9, spec.vocab, 11), b = random_ids(30, spec.vocab, 12);
  const auto normalised = embed(*engine, {a, b});
  SequenceBatch batch;
  batch.add(a, /*raw=*/true);
  batch.add(b);
  std::vector<float> out(2 * spec.hidden, NAN);
  ASSERT_TRUE(engine->embed(batch, out).ok());
  EXPECT_EQ(0, std::memcmp(out.data() + spec.hidden, normalised.data() + spec.hidden, spec.hidden * sizeof(float)));
  double norm = 0;
  for (int i = 0; i < spec.hidden; ++i) norm += double(out[i]) * out[i];
  norm = std::sqrt(norm);
  EXPECT_GT(std::abs(norm - 1.0), 1e-3) << "the raw vector should not already be a unit vector";
  for (int i = 0; i < spec.hidden; ++i) EXPECT_NEAR(out[i] / norm, normalised[i], 1e-6) << i;
  batch.raw_vector.pop_back();  // a flag list of the wrong length is refused, not read past
  EXPECT_EQ(engine->embed(batch, out).code(), ErrorCode::kInternal);
}

TEST(CpuEngine, IdsOutsideTheVocabularyAreInvalidArguments) {
  TempDir dir;
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path());
  ASSERT_TRUE(engine);
  std::vector<float> out(2 * spec.hidden);
  for (int32_t bad : {spec.vocab, spec.vocab + 1000, -1}) {
    SequenceBatch batch;
    batch.add(std::vector<int32_t>{1, 2, 3});
    batch.add(std::vector<int32_t>{4, bad});
    const Status st = engine->embed(batch, out);
    EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << bad;
    EXPECT_NE(st.message().find(std::to_string(bad)), std::string::npos) << st.to_string();
  }
  SequenceBatch ok;
  ok.add(std::vector<int32_t>{spec.vocab - 1, 0});
  EXPECT_TRUE(engine->embed(ok, std::span<float>(out).first(spec.hidden)).ok());
}

TEST(CpuEngine, ABatchOverTheBudgetIsRefused) {
  TempDir dir;
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path(), 16);
  ASSERT_TRUE(engine);
  SequenceBatch batch;
  batch.add(random_ids(17, spec.vocab, 9));
  std::vector<float> out(spec.hidden);
  EXPECT_EQ(engine->embed(batch, out).code(), ErrorCode::kOutOfRange);
}

// 3000 tokens: attention runs in query blocks (no 3000² matrix per head) and RoPE angles in the
// thousands keep float32 rounding like transformers'; the vector still matches the exact reference.
TEST_P(CpuEngineModes, AThreeThousandTokenInputRuns) {
  TempDir dir;
  TinyQwen3Spec spec;
  spec.layers = 1;
  spec.rope_theta = 1e6;
  const TinyQwen3 tiny = testing::write_tiny_qwen3(dir.path(), spec);
  auto engine = make_engine(dir.path(), 4096, GetParam());
  ASSERT_TRUE(engine);
  const auto long_text = random_ids(3000, spec.vocab, 10);
  const auto out = embed(*engine, {random_ids(3, spec.vocab, 11), long_text});
  std::span<const float> v(out.data() + spec.hidden, spec.hidden);
  for (float x : v) ASSERT_TRUE(std::isfinite(x));
  EXPECT_GE(cosine(v, testing::reference_embedding(tiny, long_text)), testing::min_cpu_cosine(bf16()));
  const auto alone = embed(*engine, {long_text});
  EXPECT_EQ(0, std::memcmp(alone.data(), v.data(), spec.hidden * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Modes, CpuEngineModes, ::testing::Values(Precision::kF32, Precision::kBF16),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

}  // namespace
}  // namespace embedserve

namespace embedserve {
namespace {

// Two engines in one process, each with its own DeviceContext, interleaving batches: nothing is shared between
// them but the read-only checkpoint, so each gives the bits it gives alone. On the CPU always; on a GPU too
// (two contexts on GPU 0) where one is visible.
class TwoEngines : public ::testing::TestWithParam<Device> {};

TEST_P(TwoEngines, RunSideBySideInOneProcessWithTheSameBits) {
  if (GetParam() == Device::kCuda && ops::visible_gpus() == 0) GTEST_SKIP() << "no GPU visible";
  TempDir dir;
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir.path(), spec);
  EngineOptions options = engine_options(dir.path(), GetParam(), 256);
  options.precision = Precision::kF32;
  auto a = create_engine(options);
  auto b = create_engine(options);
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().to_string() << b.status().to_string();
  const std::vector<std::vector<int32_t>> first = {random_ids(5, spec.vocab, 1), random_ids(40, spec.vocab, 2)};
  const std::vector<std::vector<int32_t>> second = {random_ids(17, spec.vocab, 3)};
  const auto a1 = embed(**a, first);
  const auto b2 = embed(**b, second);
  const auto b1 = embed(**b, first);
  const auto a2 = embed(**a, second);
  EXPECT_EQ(std::memcmp(a1.data(), b1.data(), a1.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(a2.data(), b2.data(), a2.size() * sizeof(float)), 0);
  a->reset();  // dropping one leaves the other working
  EXPECT_EQ(embed(**b, second), b2);
}

INSTANTIATE_TEST_SUITE_P(Devices, TwoEngines, ::testing::Values(Device::kCpu, Device::kCuda),
                         [](const auto& info) { return std::string(device_name(info.param)); });

}  // namespace
}  // namespace embedserve
