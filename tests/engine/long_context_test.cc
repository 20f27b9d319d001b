// A 32k-token input, the longest Qwen3-Embedding is used with: it must run in memory that grows with the
// tokens, not their square (TEI ran out of memory warming up at 32k; a [heads, L, L] score tensor of f32
// would be 16 GiB for the 0.6B's 16 heads).
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cmath>

#include "engine/engine_factory.h"
#include "test_files.h"
#include "tiny_qwen3.h"

namespace embedserve {
namespace {

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(LongContext, A32kTokenInputRunsInLinearMemory) {
  testing::TempDir dir;
  testing::TinyQwen3Spec spec;
  spec.layers = 2;  // the last layer attends only from the pooled token: the first does the full L×L work
  spec.rope_theta = 1e6;
  spec.max_position = 40960;  // Qwen3-Embedding's max_position_embeddings
  testing::write_tiny_qwen3(dir.path(), spec);
  constexpr int64_t kTokens = 32768;
  EngineOptions options;
  options.model_dir = dir.path();
  options.device = Device::kCpu;
  options.threads = 2;  // each attention thread holds a 64-row block of scores: fix the count the bound assumes
  options.workspace_tokens = kTokens;  // the workspace is sized here, once, as serve does for --context-length
  auto engine = create_engine(options);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();

  SequenceBatch batch;
  batch.add(testing::random_ids(kTokens, spec.vocab, 32768));
  const int hidden = (*engine)->info().hidden_size;
  std::vector<float> out(hidden, NAN);

  const long before = peak_rss_kib();
  const Status st = (*engine)->embed(batch, out);
  const long grown_kib = peak_rss_kib() - before;
  ASSERT_TRUE(st.ok()) << st.to_string();
  double norm = 0;
  for (float x : out) {
    ASSERT_TRUE(std::isfinite(x));
    norm += double(x) * x;
  }
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5);
  // One head's full score matrix alone would be 32768² × 4 bytes = 4 GiB; the blocked attention needs
  // 64 × 32768 × 4 bytes = 8 MiB per thread (two here). Allow generous slack for the allocator, never quadratic.
  EXPECT_LT(grown_kib, 256 * 1024) << "peak RSS grew by " << grown_kib / 1024 << " MiB";
}

}  // namespace
}  // namespace embedserve
