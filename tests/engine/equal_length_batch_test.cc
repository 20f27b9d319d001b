// The causal mask with sequences of equal length: TEI once skipped the mask when no input needed padding,
// so every vector of such a batch was wrong. Ours has no padding and no mask to skip; this test keeps it so.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "engine/engine_factory.h"
#include "reference_qwen3.h"
#include "test_files.h"
#include "tiny_qwen3.h"

namespace embedserve {
namespace {

using testing::random_ids;

// In both CPU modes: f32 (the parity mode) and bf16 weights (the default).
class EqualLengthBatch : public ::testing::TestWithParam<Precision> {};

TEST_P(EqualLengthBatch, EveryVectorIsCausalAndEqualsItsVectorAlone) {
  testing::TempDir dir;
  testing::TinyQwen3Spec spec;
  spec.layers = 2;
  const testing::TinyQwen3 tiny = testing::write_tiny_qwen3(dir.path(), spec);
  EngineOptions options;
  options.model_dir = dir.path();
  options.device = Device::kCpu;
  options.precision = GetParam();
  auto engine = create_engine(options);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  const int hidden = (*engine)->info().hidden_size;

  // Four different sequences of the same length (the case where a padded engine sees "no padding").
  std::vector<std::vector<int32_t>> seqs;
  for (uint32_t s = 0; s < 4; ++s) seqs.push_back(random_ids(19, spec.vocab, 100 + s));
  SequenceBatch batch;
  for (const auto& s : seqs) batch.add(s);
  std::vector<float> out(seqs.size() * hidden, NAN);
  ASSERT_TRUE((*engine)->embed(batch, out).ok());

  for (size_t s = 0; s < seqs.size(); ++s) {
    std::span<const float> v(out.data() + s * hidden, hidden);
    // Against the plain causal reference (tests/model/reference_qwen3.cc, double precision). The pooled last
    // token sees every token either way, but with two layers it reads the earlier tokens' first-layer states,
    // which without the mask would have seen their successors: such a vector lands far below this bound (0.986).
    EXPECT_GE(testing::cosine(v, testing::reference_embedding(tiny, seqs[s])),
              testing::min_cpu_cosine(GetParam() == Precision::kBF16))
        << "sequence " << s;

    SequenceBatch alone;
    alone.add(seqs[s]);
    std::vector<float> single(hidden, NAN);
    ASSERT_TRUE((*engine)->embed(alone, single).ok());
    EXPECT_EQ(0, std::memcmp(single.data(), v.data(), hidden * sizeof(float))) << "sequence " << s;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, EqualLengthBatch, ::testing::Values(Precision::kF32, Precision::kBF16),
                         [](const auto& info) { return std::string(precision_name(info.param)); });

}  // namespace
}  // namespace embedserve
