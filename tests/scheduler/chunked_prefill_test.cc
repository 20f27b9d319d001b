// Scheduler tests of chunked prefill and deadlines against FakeEngine: a long input goes in chunks with short
// queries between them, stops at the next chunk when its client leaves, a deadline is answered while the engine
// runs, and abandon() ends a shutdown whatever the engine does.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "fake_engine.h"
#include "scheduler/scheduler.h"

namespace embedserve {
namespace {

using namespace std::chrono_literals;
using testing::FakeEngine;
using testing::fake_ids;
using testing::fake_vector;

constexpr int kHidden = 4;

std::future<StatusOr<JobResult>> submit(Scheduler& s, std::vector<int32_t> input, CancelFlag cancel = nullptr,
                                        SteadyClock::time_point deadline = SteadyClock::time_point::max()) {
  Job job;
  job.inputs = {std::move(input)};
  job.cancelled = std::move(cancel);
  job.deadline = deadline;
  return s.submit_future(std::move(job));
}

SchedulerOptions chunked(size_t budget, size_t chunk) {
  SchedulerOptions o;
  o.max_num_batched_tokens = budget;
  o.chunk_tokens = chunk;
  return o;
}

TEST(ChunkedPrefillScheduler, ALongInputGoesInChunksWithQueriesBetweenThem) {
  FakeEngine engine(64, kHidden, /*chunked_prefill=*/true);
  Scheduler s(engine, chunked(64, 64));
  engine.close_gate();
  const auto long_input = fake_ids(1, 300);
  auto long_result = submit(s, long_input);
  engine.wait_for_batches(1);  // the first chunk is in the engine
  const auto query = fake_ids(5, 4);
  auto query_result = submit(s, query);
  engine.open_gate();
  auto q = query_result.get();
  ASSERT_TRUE(q.ok()) << q.status().to_string();
  EXPECT_EQ(q->vectors, fake_vector(query, kHidden));
  auto l = long_result.get();
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_EQ(l->vectors, fake_vector(long_input, kHidden)) << "the chunks make up the whole input";

  const auto batches = engine.batches();
  ASSERT_EQ(batches.size(), 6u);  // chunks of 64, 64, 64, 64, 44 and the query after the first
  EXPECT_TRUE(batches[0].chunk.has_value());
  EXPECT_FALSE(batches[1].chunk.has_value()) << "the query rode the batch right after the first chunk";
  EXPECT_EQ(batches[1].token_ids, query);
  size_t start = 0;
  for (const SequenceBatch& b : batches) {
    if (!b.chunk) continue;
    EXPECT_EQ(b.num_sequences(), 1u) << "a chunk rides alone";
    EXPECT_EQ(b.chunk->start, start);
    EXPECT_EQ(b.chunk->total, 300u);
    EXPECT_LE(b.num_tokens(), 64u);
    start += b.num_tokens();
  }
  EXPECT_EQ(start, 300u);
  EXPECT_EQ(engine.sequences_in_progress(), 0u);
}

TEST(ChunkedPrefillScheduler, TheChunkSizeIsItsOwnFromTheBudget) {
  FakeEngine engine(1024, kHidden, true);
  Scheduler s(engine, chunked(1024, 100));
  auto r = submit(s, fake_ids(2, 250)).get();
  ASSERT_TRUE(r.ok());
  const auto batches = engine.batches();
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0].num_tokens(), 100u);
  EXPECT_EQ(batches[2].num_tokens(), 50u);
}

TEST(ChunkedPrefillScheduler, OnlyInputsAboveTheThresholdGoInChunks) {
  // serve's default: inputs that fit the budget go whole in shared batches; longer ones in small chunks.
  FakeEngine engine(2048, kHidden, true);
  SchedulerOptions o = chunked(1024, 100);
  o.chunk_above = 1024;
  Scheduler s(engine, o);
  ASSERT_TRUE(submit(s, fake_ids(2, 1000)).get().ok());
  auto batches = engine.batches();
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_FALSE(batches[0].chunk.has_value());
  EXPECT_EQ(batches[0].num_tokens(), 1000u);
  ASSERT_TRUE(submit(s, fake_ids(3, 1050)).get().ok());
  batches = engine.batches();
  ASSERT_EQ(batches.size(), 12u);  // the 1,000-token input, then 10 chunks of 100 and one of 50
  EXPECT_TRUE(batches[1].chunk.has_value());
  EXPECT_EQ(batches[1].num_tokens(), 100u);
  EXPECT_EQ(batches[11].num_tokens(), 50u);
}

TEST(ChunkedPrefillScheduler, AWorkspaceOfWorkspaceTokensForTakesEveryInputUpToTheContext) {
  // serve, embed and the Python engine size the engine's workspace by workspace_tokens_for, not the context: every
  // call the scheduler then makes must fit it. A budget below the chunking threshold (512 < 1,024) is the case
  // where an input longer than the budget still goes whole.
  struct Case {
    size_t budget, chunk, above;
  };
  for (const Case c : {Case{2048, 1024, 1024}, Case{512, 512, 1024}, Case{1024, 100, 1024}, Case{300, 0, 0}}) {
    SchedulerOptions o = chunked(c.budget, c.chunk);
    o.chunk_above = c.above;
    const size_t workspace = workspace_tokens_for(o, 4000);  // the fake model's context: 4,096
    EXPECT_LT(workspace, 4000u);
    FakeEngine engine(workspace, kHidden, true);
    Scheduler s(engine, o);
    for (size_t len : {c.above, c.above + 1, c.budget, workspace, workspace + 1, size_t{4000}}) {
      if (len == 0) continue;
      auto r = submit(s, fake_ids(1, len)).get();
      EXPECT_TRUE(r.ok()) << "budget " << c.budget << ", a " << len << "-token input: " << r.status().to_string();
    }
    for (const SequenceBatch& b : engine.batches()) EXPECT_LE(b.num_tokens(), workspace);
  }
  // Without chunked prefill the longest input goes whole.
  SchedulerOptions whole = chunked(2048, 0);
  whole.chunked_prefill = false;
  EXPECT_EQ(workspace_tokens_for(whole, 4000), 4000u);
}

TEST(ChunkedPrefillScheduler, AnEngineWithoutChunksTakesTheInputWhole) {
  FakeEngine engine(512, kHidden, /*chunked_prefill=*/false);
  Scheduler s(engine, chunked(64, 64));
  const auto input = fake_ids(3, 300);
  auto r = submit(s, input).get();
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(engine.batches().size(), 1u);
  EXPECT_FALSE(engine.batches()[0].chunk.has_value());
}

TEST(ChunkedPrefillScheduler, InputsPastTheModelsPositionsAreRefusedAtSubmit) {
  FakeEngine engine(64, kHidden, true);  // max_position_embeddings 4096
  Scheduler s(engine, chunked(64, 64));
  auto r = submit(s, fake_ids(1, 4097)).get();
  EXPECT_EQ(r.status().code(), ErrorCode::kOutOfRange);
  EXPECT_TRUE(submit(s, fake_ids(1, 4096)).get().ok()) << "within positions, far past the workspace: in chunks";
}

TEST(ChunkedPrefillScheduler, ADepartedClientsInputStopsAtTheNextChunk) {
  FakeEngine engine(64, kHidden, true);
  std::atomic<size_t> abandoned_sent{0}, abandoned_total{0};
  SchedulerOptions o = chunked(64, 64);
  o.on_chunks_abandoned = [&](size_t sent, size_t total) {
    abandoned_sent = sent;
    abandoned_total = total;
  };
  Scheduler s(engine, o);
  engine.close_gate();
  auto gone = std::make_shared<std::atomic<bool>>(false);
  auto result = submit(s, fake_ids(1, 1000), gone);
  engine.wait_for_batches(1);
  gone->store(true);
  engine.open_gate();
  auto r = result.get();
  EXPECT_EQ(r.status().code(), ErrorCode::kCancelled);
  // The next request runs after the departed input was dropped; by then no chunk of it followed the first.
  ASSERT_TRUE(submit(s, fake_ids(2, 3)).get().ok());
  const auto batches = engine.batches();
  ASSERT_EQ(batches.size(), 2u) << "one chunk of 1000 tokens ran, then only the next request";
  EXPECT_TRUE(batches[0].chunk.has_value());
  EXPECT_FALSE(batches[1].chunk.has_value());
  EXPECT_EQ(engine.sequences_in_progress(), 0u) << "the input's keys and values were freed";
  EXPECT_EQ(abandoned_sent.load(), 64u);
  EXPECT_EQ(abandoned_total.load(), 1000u);
}

TEST(ChunkedPrefillScheduler, ADeadlineIsAnsweredWhileTheEngineRuns) {
  FakeEngine engine(64, kHidden);
  Scheduler s(engine, chunked(64, 64));
  engine.close_gate();  // the engine call lasts until the gate opens
  const auto start = SteadyClock::now();
  auto in_engine = submit(s, fake_ids(1, 10), nullptr, start + 100ms);
  auto queued = submit(s, fake_ids(2, 60), nullptr, start + 150ms);
  engine.wait_for_batches(1);
  ASSERT_EQ(in_engine.wait_for(2s), std::future_status::ready) << "the answer waited for the engine";
  EXPECT_EQ(in_engine.get().status().code(), ErrorCode::kDeadlineExceeded);
  ASSERT_EQ(queued.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(queued.get().status().code(), ErrorCode::kDeadlineExceeded);
  const double waited = std::chrono::duration<double>(SteadyClock::now() - start).count();
  EXPECT_LT(waited, 1.0);
  engine.open_gate();
  // The scheduler goes on: the engine's late vectors for the timed-out job are dropped.
  EXPECT_TRUE(submit(s, fake_ids(3, 5)).get().ok());
}

TEST(ChunkedPrefillScheduler, AbandonAnswersWhatIsLeftAndDoesNotWaitForAStuckEngine) {
  FakeEngine engine(64, kHidden, true);
  Scheduler s(engine, chunked(64, 64));
  engine.close_gate();
  auto running = submit(s, fake_ids(1, 500));
  engine.wait_for_batches(1);
  auto queued = submit(s, fake_ids(2, 5));
  const auto start = SteadyClock::now();
  EXPECT_FALSE(s.abandon(200ms)) << "the engine call is still running";
  EXPECT_LT(std::chrono::duration<double>(SteadyClock::now() - start).count(), 1.0);
  EXPECT_EQ(queued.get().status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(running.get().status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(submit(s, fake_ids(3, 5)).get().status().code(), ErrorCode::kUnavailable) << "no longer admitting";
  engine.open_gate();
  EXPECT_TRUE(s.abandon(2s)) << "the engine call ended: the batcher leaves without another chunk";
  EXPECT_EQ(engine.batches().size(), 1u);
  EXPECT_EQ(engine.sequences_in_progress(), 0u);
}

}  // namespace
}  // namespace embedserve
