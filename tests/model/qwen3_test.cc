// Qwen3Model on tiny random checkpoints against the double-precision reference, per dtype and pooling.
#include "model/qwen3.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>
#include <cstring>
#include <cstdlib>

#include "ops/context.h"
#include "ops/graph.h"
#include "ops/linear.h"
#include "reference_qwen3.h"
#include "test_files.h"
#include "tiny_qwen3.h"
#include "weights/model_config.h"
#include "weights/weight_store.h"

namespace embedserve {
namespace {

using testing::TempDir;
using testing::TinyQwen3;
using testing::TinyQwen3Spec;

using testing::random_ids;

struct Loaded {
  std::unique_ptr<WeightStore> store;
  std::unique_ptr<Qwen3Model> model;
};

Loaded load(const std::filesystem::path& dir, const ops::DeviceContext& ctx, size_t workspace_tokens = 256) {
  auto config = load_model_config(dir / "config.json");
  EXPECT_TRUE(config.ok()) << config.status().to_string();
  auto store = WeightStore::open(dir);
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  auto model = Qwen3Model::load(*config, **store, ctx, workspace_tokens);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return {};
  return {std::move(store).value(), std::move(model).value()};
}

// A context of `precision` on `device`, or nullptr where this machine has no such device (the test then skips). A
// GPU that is visible but cannot be used (no cuBLAS) fails the test rather than skipping it.
std::unique_ptr<ops::DeviceContext> context_of(Device device, Precision precision) {
  if (device == Device::kCuda && ops::visible_gpus() == 0) return nullptr;
  ops::ContextOptions o;
  o.device = device;
  o.precision = precision;
  if (const char* cublas = std::getenv("EMBEDSERVE_CUBLAS_PATH")) o.cublas_path = cublas;  // as cli/ passes it
  auto ctx = ops::DeviceContext::create(o);
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  return ctx.ok() ? std::move(ctx).value() : nullptr;
}
std::unique_ptr<ops::DeviceContext> f32_context(Device device) { return context_of(device, Precision::kF32); }

// The one model definition runs on every backend present: the CPU always, CUDA (f32 parity mode) where a GPU is.
class Qwen3ModelTest : public ::testing::TestWithParam<std::tuple<std::string, std::string, Device>> {
 protected:
  void SetUp() override {
    ctx_ = f32_context(std::get<2>(GetParam()));
    if (!ctx_) GTEST_SKIP() << "no " << device_name(std::get<2>(GetParam())) << " backend here";
  }
  // A tiny checkpoint of the parameter's dtype and pooling (other fields as `spec` has them), in dir_.
  void write_tiny(TinyQwen3Spec spec) {
    spec.dtype = std::get<0>(GetParam());
    spec.pooling = std::get<1>(GetParam());
    testing::write_tiny_qwen3(dir_.path(), spec);
  }
  // The same, loaded on the parameter's device.
  Loaded load_tiny(const TinyQwen3Spec& spec) {
    write_tiny(spec);
    return load(dir_.path(), *ctx_);
  }
  Pooling pooling() const {
    const std::string& p = std::get<1>(GetParam());
    return p == "mean" ? Pooling::kMean : p == "cls" ? Pooling::kCls : Pooling::kLastToken;
  }
  // m's pooled, unnormalised vectors of the batch `offsets` cuts `ids` into, `hidden` wide; NaN where it wrote none.
  std::vector<float> forward(Loaded& m, std::span<const int32_t> ids, const std::vector<int32_t>& offsets, int hidden) {
    std::vector<float> out((offsets.size() - 1) * static_cast<size_t>(hidden), NAN);
    const Status st = m.model->forward(ids, offsets, pooling(), /*normalize=*/false, out);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return out;
  }
  std::unique_ptr<ops::DeviceContext> ctx_;
  TempDir dir_;
};

// The pooled (not yet normalised) states of a batch of different lengths, one of them past a query block
// of attention, against the reference computed one sequence at a time in double.
TEST_P(Qwen3ModelTest, PooledStatesMatchTheDoubleReference) {
  TinyQwen3Spec spec;
  spec.dtype = std::get<0>(GetParam());
  spec.pooling = std::get<1>(GetParam());
  spec.normalize = false;
  spec.model_prefix = spec.dtype != "F16";  // both key spellings
  const TinyQwen3 tiny = testing::write_tiny_qwen3(dir_.path(), spec);
  Loaded m = load(dir_.path(), *ctx_);
  ASSERT_TRUE(m.model);

  std::vector<std::vector<int32_t>> seqs;
  std::vector<int32_t> ids, offsets = {0};
  for (int len : {1, 2, 9, 70}) {
    seqs.push_back(random_ids(len, spec.vocab, 7 * len));
    ids.insert(ids.end(), seqs.back().begin(), seqs.back().end());
    offsets.push_back(static_cast<int32_t>(ids.size()));
  }
  const Pooling pooling = spec.pooling == "mean" ? Pooling::kMean : spec.pooling == "cls" ? Pooling::kCls : Pooling::kLastToken;
  std::vector<float> out(seqs.size() * spec.hidden, NAN);
  const Status st = m.model->forward(ids, offsets, pooling, /*normalize=*/false, out);
  ASSERT_TRUE(st.ok()) << st.to_string();
  for (size_t s = 0; s < seqs.size(); ++s) {
    const std::vector<double> want = testing::reference_embedding(tiny, seqs[s]);
    double max_ref = 0, max_err = 0, dot = 0, na = 0, nb = 0;
    for (int i = 0; i < spec.hidden; ++i) {
      const double got = out[s * spec.hidden + i];
      max_ref = std::max(max_ref, std::fabs(want[i]));
      max_err = std::max(max_err, std::fabs(got - want[i]));
      dot += got * want[i];
      na += got * got;
      nb += want[i] * want[i];
    }
    // f32 compute against exact math over 2 layers: ~1e-6 relative; 1e-5 leaves room, a real bug is O(1).
    EXPECT_LT(max_err, 1e-5 * max_ref) << "sequence " << s << " of length " << seqs[s].size();
    EXPECT_GE(dot / std::sqrt(na * nb), 0.999999) << "sequence " << s;
  }
}

// A NaN or infinity anywhere in the weights is refused at load, naming the tensor, its file and the element, on
// every backend (the check rides on the copy into the context's memory): never a model that answers NaN vectors.
TEST_P(Qwen3ModelTest, ANonFiniteWeightIsRefusedAtLoadNamingTheTensor) {
  if (std::get<1>(GetParam()) != "lasttoken") GTEST_SKIP() << "one pooling is enough: this is about loading";
  TinyQwen3Spec spec;
  spec.dtype = std::get<0>(GetParam());
  spec.model_prefix = false;
  testing::write_tiny_qwen3(dir_.path(), spec);
  const std::filesystem::path file = dir_.path() / "model.safetensors";
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  uint64_t header_len = 0;
  f.read(reinterpret_cast<char*>(&header_len), 8);
  std::string header(header_len, '\0');
  f.read(header.data(), static_cast<std::streamsize>(header_len));
  const auto meta = nlohmann::json::parse(header);
  const uint64_t begin = meta["layers.1.mlp.down_proj.weight"]["data_offsets"][0].get<uint64_t>();
  const size_t elem = spec.dtype == "F32" ? 4 : 2;
  const uint32_t f32_inf = 0x7f800000u;
  const uint16_t half_nan = spec.dtype == "BF16" ? 0x7fc0 : 0x7e00;
  f.seekp(static_cast<std::streamoff>(8 + header_len + begin + 5 * elem));  // element 5 of the tensor
  if (elem == 4) f.write(reinterpret_cast<const char*>(&f32_inf), 4);
  else f.write(reinterpret_cast<const char*>(&half_nan), 2);
  f.close();
  auto config = load_model_config(dir_.path() / "config.json");
  auto store = WeightStore::open(dir_.path());
  ASSERT_TRUE(config.ok() && store.ok());
  // In the f32 parity mode, and in bf16 compute, where on CUDA the query GEMMs run beside the copy that finds it.
  const std::unique_ptr<ops::DeviceContext> bf16 = context_of(std::get<2>(GetParam()), Precision::kBF16);
  ASSERT_TRUE(bf16);
  for (const ops::DeviceContext* ctx : {ctx_.get(), bf16.get()}) {
    SCOPED_TRACE(ctx == bf16.get() ? "bf16" : "f32");
    auto model = Qwen3Model::load(*config, **store, *ctx, 16);
    ASSERT_FALSE(model.ok());
    const std::string& m = model.status().message();
    EXPECT_NE(m.find("layers.1.mlp.down_proj.weight"), std::string::npos) << m;
    EXPECT_NE(m.find("model.safetensors"), std::string::npos) << m;
    EXPECT_NE(m.find("at element 5"), std::string::npos) << m;
    EXPECT_NE(m.find(spec.dtype == "F32" ? "Inf" : "NaN"), std::string::npos) << m;
  }
}

// A small batch replays a graph recorded for its shape where graphs record: a second batch of the same shape with
// other tokens must read its own tokens (not the recorded ones), and the first batch again must give the same bits.
// Against the f32 reference, so in the f32 parity mode, which records none (ops/context.h): on CUDA this runs
// live, and ABatchOfARecordedShapeCutElsewhereKeepsTheBitsOfEachSequence checks the replay in bf16.
TEST_P(Qwen3ModelTest, ABatchOfARecordedShapeReadsItsOwnTokens) {
  TinyQwen3Spec spec;
  spec.dtype = std::get<0>(GetParam());
  spec.pooling = std::get<1>(GetParam());
  spec.normalize = false;
  const TinyQwen3 tiny = testing::write_tiny_qwen3(dir_.path(), spec);
  Loaded m = load(dir_.path(), *ctx_);
  ASSERT_TRUE(m.model);
  const Pooling pooling = spec.pooling == "mean" ? Pooling::kMean : spec.pooling == "cls" ? Pooling::kCls : Pooling::kLastToken;
  const std::vector<int32_t> offsets = {0, 3, 20};
  auto run = [&](uint32_t seed) {
    std::vector<int32_t> ids = random_ids(20, spec.vocab, seed);
    std::vector<float> out(2 * spec.hidden, NAN);
    const Status st = m.model->forward(ids, offsets, pooling, /*normalize=*/false, out);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return std::make_pair(ids, out);
  };
  // A shape runs live until it is frequent (ops::kRecordAfterCalls calls), that call records the graph, the later
  // ones replay it: seed 12 is a replay reading tokens it was not recorded with.
  const auto [ids_a, first] = run(11);
  for (uint32_t call = 2; call <= ops::kRecordAfterCalls; ++call) {
    const auto [ids_r, live_or_recording] = run(11);
    EXPECT_EQ(std::memcmp(first.data(), live_or_recording.data(), first.size() * sizeof(float)), 0) << "call " << call;
  }
  const auto [ids_b, other] = run(12);
  const auto [ids_a2, again] = run(11);
  EXPECT_EQ(std::memcmp(first.data(), again.data(), first.size() * sizeof(float)), 0);
  for (int s = 0; s < 2; ++s) {
    const std::vector<int32_t> seq(ids_b.begin() + offsets[s], ids_b.begin() + offsets[s + 1]);
    const std::vector<double> want = testing::reference_embedding(tiny, seq);
    double max_ref = 0, max_err = 0;
    for (int i = 0; i < spec.hidden; ++i) {
      max_ref = std::max(max_ref, std::fabs(want[i]));
      max_err = std::max(max_err, std::fabs(other[s * spec.hidden + i] - want[i]));
    }
    EXPECT_LT(max_err, 1e-5 * max_ref) << "sequence " << s;
  }
}

// A small batch runs padded to its bucket (model/graph_buckets.h) where graphs record: its own vectors must keep
// their bits, under every pooling (the padding sequences come last, and last-token pooling gathers their rows too).
TEST_P(Qwen3ModelTest, ABatchPaddedToItsBucketKeepsTheBitsOfItsVectors) {
  const TinyQwen3Spec spec;
  Loaded m = load_tiny(spec);
  ASSERT_TRUE(m.model);
  std::vector<int32_t> ids, offsets = {0};
  for (int len : {1, 9, 70}) {  // 80 tokens in 3 sequences: 96 tokens in 4 (a padding sequence of 16)
    const std::vector<int32_t> seq = random_ids(len, spec.vocab, 5 * len);
    ids.insert(ids.end(), seq.begin(), seq.end());
    offsets.push_back(static_cast<int32_t>(ids.size()));
  }
  auto run = [&](int64_t pad_up_to) {
    m.model->pad_batches_up_to(pad_up_to);
    std::vector<float> out(3 * spec.hidden, NAN);
    const Status st = m.model->forward(ids, offsets, pooling(), /*normalize=*/true, out);
    EXPECT_TRUE(st.ok()) << st.to_string();
    return out;
  };
  const std::vector<float> plain = run(0);
  const int64_t padding_before = m.model->padding_tokens();
  const std::vector<float> padded = run(256);
  EXPECT_EQ(m.model->padding_tokens() - padding_before, 16);  // it did run as the bucket
  for (float v : padded) ASSERT_TRUE(std::isfinite(v));
  EXPECT_EQ(std::memcmp(plain.data(), padded.data(), plain.size() * sizeof(float)), 0);
  // A bucket past the limit: the batch runs as it is.
  const int64_t padding_after = m.model->padding_tokens();
  run(90);
  EXPECT_EQ(m.model->padding_tokens(), padding_after);
}

// Where graphs record, the engine records one query's graphs at load (record_query_graphs): two per bucket of 16, 32,
// 48 and 64 tokens (a query filling it, a shorter one with a padding sequence), keyed as the queries that come later
// are, so those replay them and record nothing more (a key that missed would be recorded again once frequent).
// Elsewhere it records nothing.
TEST_P(Qwen3ModelTest, QueriesReplayTheGraphsRecordedAtLoad) {
  const TinyQwen3Spec spec;
  {
    // The f32 parity mode records none (ops/context.h), on every device.
    Loaded f32 = load_tiny(spec);
    ASSERT_TRUE(f32.model);
    ASSERT_TRUE(f32.model->record_query_graphs(pooling(), /*normalize=*/true).ok());
    EXPECT_EQ(ops::recorded_graphs(*ctx_), 0u);
  }
  // bf16 compute: on CUDA, the serving mode that records.
  const std::unique_ptr<ops::DeviceContext> bf16 = context_of(std::get<2>(GetParam()), Precision::kBF16);
  ASSERT_TRUE(bf16);
  Loaded m = load(dir_.path(), *bf16);
  ASSERT_TRUE(m.model);
  ASSERT_TRUE(m.model->record_query_graphs(pooling(), /*normalize=*/true).ok());
  const bool gpu = std::get<2>(GetParam()) == Device::kCuda;
  EXPECT_EQ(ops::recorded_graphs(*bf16), gpu ? 8u : 0u);
  for (int len : {1, 7, 15, 16, 20, 31, 32, 33, 47, 48, 63, 64}) {
    for (uint32_t call = 0; call < ops::kRecordAfterCalls; ++call) {
      const std::vector<int32_t> ids = random_ids(len, spec.vocab, 3 * len + call);
      const int32_t offsets[] = {0, len};
      std::vector<float> out(spec.hidden, NAN);
      ASSERT_TRUE(m.model->forward(ids, offsets, pooling(), /*normalize=*/true, out).ok());
      for (float v : out) ASSERT_TRUE(std::isfinite(v)) << len;
    }
  }
  EXPECT_EQ(ops::recorded_graphs(*bf16), gpu ? 8u : 0u);
}

// A graph replays what it recorded, so a later batch of the same shape with other tokens cut into other sequence
// lengths (here 63 + 1 tokens after 1 + 63: one key) must still give each sequence the bits it has alone (on CUDA in
// bf16 compute, the replay of a graph recorded with the first batch's tokens and cuts), in the f32 parity mode (whose
// per-sequence GEMMs a graph would replay with the first batch's row counts: one row alone, then 63) and in bf16
// compute. The projections are 1,024 wide, where cuBLAS's SGEMM rounds a row alone unlike one of many.
TEST_P(Qwen3ModelTest, ABatchOfARecordedShapeCutElsewhereKeepsTheBitsOfEachSequence) {
  TinyQwen3Spec spec;
  spec.hidden = 1024;
  spec.intermediate = 1024;
  spec.heads = 8;
  spec.head_dim = 128;
  Loaded f32 = load_tiny(spec);
  ASSERT_TRUE(f32.model);
  const std::unique_ptr<ops::DeviceContext> bf16_ctx = context_of(std::get<2>(GetParam()), Precision::kBF16);
  ASSERT_TRUE(bf16_ctx);
  Loaded bf16 = load(dir_.path(), *bf16_ctx);
  ASSERT_TRUE(bf16.model);
  const std::vector<int32_t> recorded = random_ids(64, spec.vocab, 21), ids = random_ids(64, spec.vocab, 22);
  for (Loaded* m : {&f32, &bf16}) {
    SCOPED_TRACE(m == &f32 ? "f32" : "bf16");
    auto run = [&](std::span<const int32_t> batch, const std::vector<int32_t>& offsets) {
      return forward(*m, batch, offsets, spec.hidden);
    };
    for (uint32_t call = 0; call <= ops::kRecordAfterCalls; ++call) run(recorded, {0, 1, 64});  // recorded, replayed
    const std::vector<float> batch = run(ids, {0, 63, 64});
    const std::vector<float> first = run(std::span(ids).first(63), {0, 63});
    const std::vector<float> second = run(std::span(ids).subspan(63), {0, 1});
    EXPECT_EQ(std::memcmp(batch.data(), first.data(), first.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(batch.data() + spec.hidden, second.data(), second.size() * sizeof(float)), 0);
  }
}

// A recorded graph fixes the attention kernel, which attention picks by the most keys a row of the call sees
// (ops/attention.h). A 40-token input alone runs in the bucket of 48 tokens and two sequences (itself and 8 tokens of
// padding), the bucket two 24-token inputs fill exactly. The pair's graph (on CUDA in bf16: one key tile of 32)
// must not replay for the input, whose keys would then be walked in two tiles of 32 where alone it takes one of 64:
// the input gets a graph of its own, and its vector the bits it has where it recorded the bucket's graph itself.
// Two contexts, so that each records its own graphs.
TEST_P(Qwen3ModelTest, AGraphRecordedForShorterSequencesIsNotReplayedForLongerOnes) {
  TinyQwen3Spec spec;
  spec.hidden = 256;
  spec.intermediate = 256;
  spec.heads = 4;
  spec.kv_heads = 2;
  spec.head_dim = 128;  // a head size the tensor-core kernels take
  write_tiny(spec);
  const std::unique_ptr<ops::DeviceContext> ctx_a = context_of(std::get<2>(GetParam()), Precision::kBF16);
  const std::unique_ptr<ops::DeviceContext> ctx_b = context_of(std::get<2>(GetParam()), Precision::kBF16);
  ASSERT_TRUE(ctx_a && ctx_b);
  Loaded a = load(dir_.path(), *ctx_a), b = load(dir_.path(), *ctx_b);
  ASSERT_TRUE(a.model && b.model);
  const bool gpu = std::get<2>(GetParam()) == Device::kCuda;
  const std::vector<int32_t> input = random_ids(40, spec.vocab, 31), pair = random_ids(48, spec.vocab, 32);
  auto run = [&](Loaded& m, std::span<const int32_t> ids, const std::vector<int32_t>& offsets) {
    return forward(m, ids, offsets, spec.hidden);
  };
  // Each shape enough times that it records (ops::kRecordAfterCalls) and then replays.
  std::vector<float> alone, after_the_pair;
  for (uint32_t call = 0; call <= ops::kRecordAfterCalls; ++call) alone = run(a, input, {0, 40});
  for (uint32_t call = 0; call <= ops::kRecordAfterCalls; ++call) run(b, pair, {0, 24, 48});
  EXPECT_EQ(ops::recorded_graphs(*ctx_b), gpu ? 1u : 0u);
  for (uint32_t call = 0; call <= ops::kRecordAfterCalls; ++call) after_the_pair = run(b, input, {0, 40});
  EXPECT_EQ(ops::recorded_graphs(*ctx_b), gpu ? 2u : 0u);
  EXPECT_EQ(std::memcmp(alone.data(), after_the_pair.data(), alone.size() * sizeof(float)), 0);
}

INSTANTIATE_TEST_SUITE_P(DtypesAndPoolings, Qwen3ModelTest,
                         ::testing::Combine(::testing::Values("F32", "BF16", "F16"),
                                            ::testing::Values("lasttoken", "mean", "cls"),
                                            ::testing::Values(Device::kCpu, Device::kCuda)),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_" + std::get<1>(info.param) + "_" +
                                  device_name(std::get<2>(info.param));
                         });

TEST_P(Qwen3ModelTest, ItsMemoryEstimateIsWhatItHoldsOnceLoaded) {
  // The engine refuses a model that cannot fit by this estimate, made before any weight is read: it must be
  // what load() then holds (weights in the context's precision, the table where the backend copies it, the
  // workspace), on every backend, or the check would let through models that fail, or refuse ones that fit.
  TinyQwen3Spec spec;
  testing::write_tiny_qwen3(dir_.path(), spec);
  Loaded m = load(dir_.path(), *ctx_, 300);
  ASSERT_TRUE(m.model);
  auto config = load_model_config(dir_.path() / "config.json");
  ASSERT_TRUE(config.ok());
  const auto estimate = Qwen3Model::resident_bytes(*config, m.model->vocab_rows(), m.model->stored_dtype(), *ctx_, 300);
  EXPECT_EQ(estimate.weights, m.model->weight_bytes());
  EXPECT_EQ(estimate.workspace, m.model->workspace_bytes());
}

TEST(Qwen3ModelLoad, AMissingTensorIsAnErrorNamingIt) {
  auto ctx = f32_context(Device::kCpu);
  TempDir dir;
  testing::write_tiny_qwen3(dir.path(), TinyQwen3Spec{}, "layers.1.mlp.up_proj.weight");
  auto config = load_model_config(dir.path() / "config.json");
  auto store = WeightStore::open(dir.path());
  ASSERT_TRUE(config.ok() && store.ok());
  auto model = Qwen3Model::load(*config, **store, *ctx, 16);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("layers.1.mlp.up_proj.weight"), std::string::npos)
      << model.status().to_string();
}

TEST(Qwen3ModelLoad, AShapeThatDoesNotFitTheConfigIsAnErrorNamingTheTensor) {
  auto ctx = f32_context(Device::kCpu);
  TempDir dir;
  testing::write_tiny_qwen3(dir.path(), TinyQwen3Spec{});
  auto config = load_model_config(dir.path() / "config.json");
  auto store = WeightStore::open(dir.path());
  ASSERT_TRUE(config.ok() && store.ok());
  ModelConfig wrong = *config;
  wrong.intermediate_size += 8;
  auto model = Qwen3Model::load(wrong, **store, *ctx, 16);
  ASSERT_FALSE(model.ok());
  EXPECT_NE(model.status().message().find("layers.0.mlp.gate_proj.weight"), std::string::npos)
      << model.status().to_string();
}

// Where a projection chooses its kernel at a query's rows (an MLP of at least 64 MiB, and at up to 32 rows every
// projection skinny_gemm takes), that choice is made while the weights copy, so the recording of the query graphs
// that follows chooses none (it would run those buckets live first, the slow part of the 4B's start-up). On CUDA;
// elsewhere nothing chooses.
TEST(Qwen3ModelLoad, TheQueryGemmsChooseTheirKernelsBesideTheWeightsCopy) {
  const std::unique_ptr<ops::DeviceContext> ctx = context_of(Device::kCuda, Precision::kBF16);
  if (!ctx) GTEST_SKIP() << "no CUDA backend here";
  TempDir dir;
  TinyQwen3Spec spec;
  spec.dtype = "BF16";
  spec.layers = 2;  // the first layer's MLP runs every row of a query's bucket, the last one's the pooled rows
  spec.hidden = 1024;
  spec.intermediate = 16384;  // gate|up [32768, 1024] in bf16: 64 MiB
  spec.heads = 8;
  spec.kv_heads = 4;
  spec.head_dim = 128;
  spec.vocab = 64;
  testing::write_tiny_qwen3(dir.path(), spec);
  ASSERT_TRUE(ops::linear_chooses_kernel(*ctx, ops::Tensor::matrix(nullptr, DType::kBF16, 2 * spec.intermediate,
                                                                   spec.hidden), 16));
  Loaded m = load(dir.path(), *ctx);
  ASSERT_TRUE(m.model);
  const size_t chosen = ops::linear_kernel_choices(*ctx);
  // w [n, k]: k|v|q [2048, 1024]; k|v, q and o [1024, 1024]; gate|up [32768, 1024]; down [1024, 16384]. At 16 and
  // 32 rows all four shapes (skinny_gemm's buckets), at 64 gate|up alone (a query of 48 tokens runs in that bucket).
  EXPECT_EQ(chosen, 9u);
  ASSERT_TRUE(m.model->record_query_graphs(Pooling::kLastToken, /*normalize=*/true).ok());
  EXPECT_EQ(ops::recorded_graphs(*ctx), 8u);
  EXPECT_EQ(ops::linear_kernel_choices(*ctx), chosen);
}

// Every weight is a copy (nothing reads the checkpoint's mapping after load): in f32 mode the matrices and norm
// vectors widened to f32; with bf16 weights the matrices as stored (2 bytes) and the norm vectors in f32; the
// embedding table in its stored dtype either way (widened per row at lookup).
TEST(Qwen3ModelLoad, OnTheCpuHoldsACopyOfEveryWeightInTheModesDtype) {
  TempDir dir;
  TinyQwen3Spec spec;
  spec.dtype = "BF16";
  const TinyQwen3 tiny = testing::write_tiny_qwen3(dir.path(), spec);
  for (Precision precision : {Precision::kF32, Precision::kBF16}) {
    SCOPED_TRACE(precision_name(precision));
    ops::ContextOptions o;
    o.precision = precision;
    auto ctx = ops::DeviceContext::create(o);
    ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
    Loaded m = load(dir.path(), **ctx, 100);
    ASSERT_TRUE(m.model);
    size_t table = 0, matrices = 0, vectors = 0;
    for (const auto& [name, values] : tiny.weights) {
      if (name == "embed_tokens.weight")
        table += values.size();
      else if (name.find("norm") != std::string::npos)
        vectors += values.size();
      else
        matrices += values.size();
    }
    const size_t matrix_bytes = precision == Precision::kBF16 ? 2 : 4;
    EXPECT_EQ(m.model->weight_bytes(), table * 2 + matrices * matrix_bytes + vectors * 4);
    EXPECT_EQ(m.model->vocab_rows(), spec.vocab);
    EXPECT_EQ(m.model->stored_dtype(), DType::kBF16);
    EXPECT_EQ(m.model->workspace_tokens(), 100u);
    // At least the residual stream, q, k, v and the MLP's activations of 100 tokens, in f32 (both modes).
    const size_t per_token = 2 * spec.hidden + 2 * spec.heads * spec.head_dim + 2 * spec.kv_heads * spec.head_dim +
                             3 * spec.intermediate;
    EXPECT_GE(m.model->workspace_bytes(), 100 * per_token * sizeof(float));
  }
}

}  // namespace
}  // namespace embedserve

namespace embedserve {
namespace {

std::unique_ptr<ops::DeviceContext> cpu_context(Quantization q) {
  ops::ContextOptions o;
  o.device = Device::kCpu;
  o.quantization = q;
  auto ctx = ops::DeviceContext::create(o);
  EXPECT_TRUE(ctx.ok()) << ctx.status().to_string();
  return std::move(ctx).value();
}

TEST(Qwen3ModelFp8, ItsMemoryEstimateIsWhatItHoldsOnceLoaded) {
  const auto ctx = cpu_context(Quantization::kFp8);
  TempDir dir;
  testing::write_tiny_qwen3(dir.path(), TinyQwen3Spec{});
  Loaded m = load(dir.path(), *ctx, 300);
  ASSERT_TRUE(m.model);
  auto config = load_model_config(dir.path() / "config.json");
  ASSERT_TRUE(config.ok());
  const auto estimate = Qwen3Model::resident_bytes(*config, m.model->vocab_rows(), m.model->stored_dtype(), *ctx, 300);
  EXPECT_EQ(estimate.weights, m.model->weight_bytes());
  EXPECT_EQ(estimate.workspace, m.model->workspace_bytes());
}

TEST(Qwen3ModelFp8, TheRealShapesHoldHalfTheGemmWeightsOfBf16) {
  // From config.json alone (no weights): the 4B and 8B's GEMM weights at one byte per parameter plus a scale per
  // output row, the table and norms as in bf16 mode.
  const auto fp8 = cpu_context(Quantization::kFp8), bf16 = cpu_context(Quantization::kNone);
  for (const char* name : {"4B", "8B"}) {
    auto c = load_model_config(std::filesystem::path(EMBEDSERVE_TEST_DATA_DIR) / "configs" / name / "config.json");
    ASSERT_TRUE(c.ok()) << c.status().to_string();
    const int64_t H = c->hidden_size, I = c->intermediate_size, hd = c->head_dim;
    const int64_t q = int64_t{c->num_attention_heads} * hd, kv = int64_t{c->num_key_value_heads} * hd;
    const int64_t rows = (2 * kv + q) + H + 2 * I + H;                 // output rows of k|v|q, o, gate|up, down
    const int64_t params = (2 * kv + q) * H + H * q + 2 * I * H + H * I;  // per layer
    const auto a = Qwen3Model::resident_bytes(*c, c->vocab_size, DType::kBF16, *bf16, 1024);
    const auto b = Qwen3Model::resident_bytes(*c, c->vocab_size, DType::kBF16, *fp8, 1024);
    EXPECT_EQ(a.weights - b.weights, size_t(c->num_hidden_layers) * size_t(params - 4 * rows))
        << name << ": bf16 " << a.weights << " B, fp8 " << b.weights << " B";
    std::printf("%s weights held: bf16 %.2f GB, fp8 %.2f GB\n", name, a.weights / 1e9, b.weights / 1e9);
  }
}

}  // namespace
}  // namespace embedserve
