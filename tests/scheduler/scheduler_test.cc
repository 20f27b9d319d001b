// Scheduler tests against FakeEngine: token budget, order of split requests, lane fairness, cancellation,
// admission, timeouts, refused batches and shutdown.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "busy_poll_cases.h"
#include "fake_engine.h"

namespace embedserve {
namespace {

using testing::FakeEngine;
using testing::fake_ids;
using testing::fake_vector;

constexpr int kHidden = 4;

SchedulerOptions opts(size_t budget, size_t interactive_max_tokens = 0, QueueLimits queue = {}) {
  SchedulerOptions o;
  o.max_num_batched_tokens = budget;
  o.interactive_max_tokens = interactive_max_tokens;
  o.queue = queue;
  return o;
}

// Submits a job and exposes its result as a future.
struct Submitted {
  std::shared_ptr<std::promise<StatusOr<JobResult>>> promise = std::make_shared<std::promise<StatusOr<JobResult>>>();
  std::future<StatusOr<JobResult>> future = promise->get_future();
  Status status;
};

Submitted submit(Scheduler& s, std::vector<std::vector<int32_t>> inputs, CancelFlag cancel = nullptr,
                 SteadyClock::time_point deadline = SteadyClock::time_point::max(),
                 std::function<void()> on_done_extra = nullptr) {
  Submitted out;
  Job job;
  job.inputs = std::move(inputs);
  job.cancelled = std::move(cancel);
  job.deadline = deadline;
  auto p = out.promise;
  job.on_done = [p, on_done_extra](StatusOr<JobResult> r) {
    if (on_done_extra) on_done_extra();
    p->set_value(std::move(r));
  };
  out.status = s.submit(std::move(job));
  return out;
}

void expect_vectors(const JobResult& r, const std::vector<std::vector<int32_t>>& inputs) {
  ASSERT_EQ(r.hidden, static_cast<size_t>(kHidden));
  ASSERT_EQ(r.vectors.size(), inputs.size() * kHidden);
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto want = fake_vector(inputs[i], kHidden);
    for (int k = 0; k < kHidden; ++k) EXPECT_EQ(r.vectors[i * kHidden + k], want[k]) << "input " << i;
  }
}

TEST(Scheduler, EveryBatchRespectsTheTokenBudget) {
  FakeEngine engine(64);
  Scheduler s(engine, opts(64));
  std::vector<Submitted> jobs;
  std::vector<std::vector<std::vector<int32_t>>> inputs;
  for (int j = 0; j < 20; ++j) {
    inputs.push_back({fake_ids(j, 1 + j % 13), fake_ids(j + 100, 30), fake_ids(j + 200, 64)});
    jobs.push_back(submit(s, inputs.back()));
    ASSERT_TRUE(jobs.back().status.ok());
  }
  for (size_t j = 0; j < jobs.size(); ++j) {
    auto r = jobs[j].future.get();
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    expect_vectors(*r, inputs[j]);
    EXPECT_EQ(r->prompt_tokens, inputs[j][0].size() + 30 + 64);
  }
  for (const auto& b : engine.batches()) {
    EXPECT_LE(b.num_tokens(), 64u);
    EXPECT_GT(b.num_sequences(), 0u);
  }
}

TEST(Scheduler, SplitsALargeRequestAcrossBatchesAndRestoresOrder) {
  FakeEngine engine(50);
  Scheduler s(engine, opts(50));
  std::vector<std::vector<int32_t>> inputs;
  for (int i = 0; i < 100; ++i) inputs.push_back(fake_ids(i * 3, 1 + (i * 17) % 40));
  auto job = submit(s, inputs);
  ASSERT_TRUE(job.status.ok());
  auto r = job.future.get();
  ASSERT_TRUE(r.ok());
  expect_vectors(*r, inputs);
  EXPECT_GT(engine.batches().size(), 10u);  // 100 inputs averaging ~20 tokens cannot fit a few 50-token batches
}

TEST(Scheduler, SameVectorAloneAndBatchedWithOthers) {
  FakeEngine engine(256);
  Scheduler s(engine, opts(256));
  const auto text = fake_ids(42, 17);
  auto alone = submit(s, {text}).future.get();
  ASSERT_TRUE(alone.ok());
  engine.close_gate();
  auto blocker = submit(s, {fake_ids(1, 3)});
  engine.wait_for_batches(2);
  // These three queue behind the blocked batch and then share one engine call.
  auto a = submit(s, {fake_ids(5, 40), fake_ids(6, 9)});
  auto b = submit(s, {fake_ids(7, 70), text, fake_ids(8, 2)});
  engine.open_gate();
  auto rb = b.future.get();
  ASSERT_TRUE(rb.ok());
  ASSERT_TRUE(a.future.get().ok());
  ASSERT_TRUE(blocker.future.get().ok());
  EXPECT_EQ(engine.batches().size(), 3u);
  EXPECT_EQ(engine.batches()[2].num_sequences(), 5u);
  for (int k = 0; k < kHidden; ++k) EXPECT_EQ(rb->vectors[1 * kHidden + k], alone->vectors[k]);
}

TEST(Scheduler, InteractiveRequestOvertakesQueuedBulkWork) {
  FakeEngine engine(100);
  Scheduler s(engine, opts(100, 20));
  std::atomic<int> order{0};
  int bulk_done_at = -1, query_done_at = -1;
  engine.close_gate();
  std::vector<std::vector<int32_t>> bulk_inputs(40, fake_ids(3, 50));  // 2,000 tokens: 20 batches of 2 inputs
  auto bulk = submit(s, bulk_inputs, nullptr, SteadyClock::time_point::max(), [&] { bulk_done_at = order++; });
  engine.wait_for_batches(1);
  auto query = submit(s, {fake_ids(9, 8)}, nullptr, SteadyClock::time_point::max(), [&] { query_done_at = order++; });
  engine.open_gate();
  ASSERT_TRUE(query.future.get().ok());
  ASSERT_TRUE(bulk.future.get().ok());
  EXPECT_LT(query_done_at, bulk_done_at);
  // The query rode the batch right after the one in flight when it arrived.
  const auto batches = engine.batches();
  ASSERT_GE(batches.size(), 2u);
  bool in_second = false;
  for (size_t i = 0; i < batches[1].num_sequences(); ++i) in_second |= batches[1].sequence_length(i) == 8;
  EXPECT_TRUE(in_second);
}

// A batch job's chunk is marked bulk: however small, it must not take the interactive lane's priority over a
// query that arrives behind it.
TEST(Scheduler, ASmallJobMarkedBulkDoesNotOvertakeAQuery) {
  FakeEngine engine(100);
  Scheduler s(engine, opts(10, 20));  // one 8-token input per batch
  std::atomic<int> order{0};
  int bulk_done_at = -1, query_done_at = -1;
  engine.close_gate();
  auto blocker = submit(s, {fake_ids(1, 8)});
  engine.wait_for_batches(1);
  Job small;
  small.inputs = {fake_ids(2, 8), fake_ids(3, 8)};  // 16 tokens: interactive by size
  small.bulk = true;
  auto small_done = std::make_shared<std::promise<void>>();
  small.on_done = [&, small_done](StatusOr<JobResult>) {
    bulk_done_at = order++;
    small_done->set_value();
  };
  ASSERT_TRUE(s.submit(std::move(small)).ok());
  auto query = submit(s, {fake_ids(9, 8)}, nullptr, SteadyClock::time_point::max(), [&] { query_done_at = order++; });
  engine.open_gate();
  ASSERT_TRUE(query.future.get().ok());
  small_done->get_future().wait();
  ASSERT_TRUE(blocker.future.get().ok());
  // Interactive (weight 4) packs first once both lanes wait; without the flag the small job, queued first in
  // the same lane, would finish before the query.
  EXPECT_LT(query_done_at, bulk_done_at);
}

// While queries arrive, bulk inputs fill only BulkYield::tokens of a call, so a query waits for a short call;
// without queries bulk work gets the whole budget.
TEST(Scheduler, BulkWorkYieldsShortCallsWhileQueriesArriveAndFullOnesOtherwise) {
  FakeEngine engine(1000);
  SchedulerOptions o = opts(1000, 50);
  o.bulk_yield.tokens = 100;
  o.bulk_yield.recent = std::chrono::hours(1);
  {
    Scheduler s(engine, o);
    auto alone = submit(s, std::vector<std::vector<int32_t>>(40, fake_ids(1, 50)));  // 2,000 tokens, no query yet
    ASSERT_TRUE(alone.future.get().ok());
  }
  ASSERT_EQ(engine.batches().size(), 2u);
  EXPECT_EQ(engine.batches()[0].num_tokens(), 1000u);
  Scheduler s(engine, o);
  ASSERT_TRUE(submit(s, {fake_ids(5, 10)}).future.get().ok());  // a query: the bulk lane yields from now on
  const size_t before = engine.batches().size();
  auto bulk = submit(s, std::vector<std::vector<int32_t>>(40, fake_ids(1, 50)));
  ASSERT_TRUE(bulk.future.get().ok());
  const auto batches = engine.batches();
  ASSERT_GT(batches.size(), before);
  for (size_t i = before; i < batches.size(); ++i) EXPECT_LE(batches[i].num_tokens(), 100u) << "batch " << i;
}

TEST(Scheduler, BulkWorkIsNotStarvedByAStreamOfQueries) {
  FakeEngine engine(32);
  engine.set_delay(std::chrono::microseconds(200));
  Scheduler s(engine, opts(32, 31));
  std::atomic<bool> bulk_done{false};
  // Each bulk input is a whole batch, so bulk only progresses when it packs first.
  auto bulk = submit(s, std::vector<std::vector<int32_t>>(5, fake_ids(1, 32)), nullptr, SteadyClock::time_point::max(),
                     [&] { bulk_done = true; });
  ASSERT_TRUE(bulk.status.ok());
  int queries = 0;
  std::vector<Submitted> pending;
  while (!bulk_done && queries < 20000) {
    // Keep the interactive lane non-empty with 31-token queries that would fill every batch on their own.
    pending.push_back(submit(s, {fake_ids(queries, 31)}));
    ++queries;
    if (pending.size() > 8) {
      ASSERT_TRUE(pending.front().future.get().ok());
      pending.erase(pending.begin());
    }
  }
  EXPECT_TRUE(bulk_done) << "bulk job still waiting after " << queries << " queries";
  ASSERT_TRUE(bulk.future.get().ok());
  for (auto& p : pending) ASSERT_TRUE(p.future.get().ok());
}

TEST(Scheduler, CancelledJobIsSkipped) {
  FakeEngine engine(16);
  Scheduler s(engine, opts(16));
  engine.close_gate();
  auto first = submit(s, {fake_ids(1, 4)});
  engine.wait_for_batches(1);
  auto flag = std::make_shared<std::atomic<bool>>(false);
  auto gone = submit(s, std::vector<std::vector<int32_t>>(10, std::vector<int32_t>(8, 777)), flag);
  flag->store(true);
  engine.open_gate();
  ASSERT_TRUE(first.future.get().ok());
  auto r = gone.future.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kCancelled);
  for (const auto& b : engine.batches())
    for (int32_t id : b.token_ids) EXPECT_NE(id, 777) << "a cancelled job's tokens reached the engine";
}

TEST(Scheduler, RefusesWhenTheQueueIsFull) {
  FakeEngine engine(8);
  Scheduler s(engine, opts(8, 0, QueueLimits{4, 0}));
  engine.close_gate();
  auto running = submit(s, {fake_ids(1, 8)});
  engine.wait_for_batches(1);  // dispatched inputs no longer count against the queue
  auto a = submit(s, {fake_ids(2, 2), fake_ids(3, 2), fake_ids(4, 2)});
  auto b = submit(s, {fake_ids(5, 2)});
  auto c = submit(s, {fake_ids(6, 2)});
  EXPECT_TRUE(a.status.ok());
  EXPECT_TRUE(b.status.ok());
  EXPECT_EQ(c.status.code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(s.stats().queued_inputs, 4u);
  engine.open_gate();
  EXPECT_TRUE(a.future.get().ok());
  EXPECT_TRUE(b.future.get().ok());
  EXPECT_TRUE(running.future.get().ok());
}

TEST(Scheduler, EmptyQueueAdmitsARequestLargerThanTheLimit) {
  FakeEngine engine(8);
  Scheduler s(engine, opts(8, 0, QueueLimits{2, 4}));
  auto big = submit(s, std::vector<std::vector<int32_t>>(6, fake_ids(1, 3)));
  ASSERT_TRUE(big.status.ok());
  EXPECT_TRUE(big.future.get().ok());
}

TEST(Scheduler, TimesOutAJobThatWaitedTooLong) {
  FakeEngine engine(8);
  Scheduler s(engine, opts(8));
  engine.close_gate();
  auto running = submit(s, {fake_ids(1, 8)});
  engine.wait_for_batches(1);
  auto late = submit(s, {fake_ids(2, 3)}, nullptr, SteadyClock::now() + std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  engine.open_gate();
  ASSERT_TRUE(running.future.get().ok());
  auto r = late.future.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(engine.batches().size(), 1u);
}

// A batch the engine refuses (an id past the embedding table) is the batch's fault: its jobs fail, the engine
// stays in rotation. (A backend failure is the engine's: replicas_test.cc.)
TEST(Scheduler, RefusedBatchFailsOnlyTheJobsInThatBatch) {
  FakeEngine engine(8);
  Scheduler s(engine, opts(8));
  engine.close_gate();
  auto blocker = submit(s, {fake_ids(9, 8)});
  engine.wait_for_batches(1);
  auto bad = submit(s, {{1, 2, 1000, 4, 5, 6, 7, 8}, fake_ids(1, 2)});
  auto good = submit(s, {fake_ids(3, 5)});
  engine.open_gate();
  ASSERT_TRUE(blocker.future.get().ok());
  auto rb = bad.future.get();
  ASSERT_FALSE(rb.ok());
  EXPECT_EQ(rb.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.replicas_up(), 1u);
  auto rg = good.future.get();
  ASSERT_TRUE(rg.ok());
  expect_vectors(*rg, {fake_ids(3, 5)});
}

TEST(Scheduler, InputLongerThanTheBudgetRidesAloneWhenTheEngineTakesIt) {
  FakeEngine engine(100);  // the engine's workspace holds 100 tokens; the packing budget is 32
  Scheduler s(engine, opts(32));
  engine.close_gate();
  auto blocker = submit(s, {fake_ids(1, 4)});
  engine.wait_for_batches(1);
  auto mixed = submit(s, {fake_ids(2, 10), fake_ids(3, 80), fake_ids(4, 10)});
  engine.open_gate();
  ASSERT_TRUE(blocker.future.get().ok());
  auto r = mixed.future.get();
  ASSERT_TRUE(r.ok());
  expect_vectors(*r, {fake_ids(2, 10), fake_ids(3, 80), fake_ids(4, 10)});
  const auto batches = engine.batches();
  ASSERT_EQ(batches.size(), 4u);  // blocker, [10], [80] alone, [10]
  EXPECT_EQ(batches[2].num_sequences(), 1u);
  EXPECT_EQ(batches[2].num_tokens(), 80u);
  EXPECT_EQ(submit(s, {fake_ids(5, 101)}).status.code(), ErrorCode::kOutOfRange);
}

TEST(Scheduler, RejectsInputsItCannotBatch) {
  FakeEngine engine(8);
  Scheduler s(engine, opts(8));
  EXPECT_EQ(submit(s, {}).status.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(submit(s, {fake_ids(1, 2), {}}).status.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(submit(s, {fake_ids(1, 9)}).status.code(), ErrorCode::kOutOfRange);
}

// With busy polling on (scheduler/busy_poll.h) the batcher polls for work before it sleeps: jobs submitted while it
// polls, and after it gave up and slept, are answered; shutting down ends its polling at once rather than after a
// poll of a minute.
TEST(Scheduler, APollingBatcherAnswersEveryJobAndStopsWithoutWaitingOutThePoll) {
  testing::with_busy_polling([] {
    const auto start = SteadyClock::now();
    {
      FakeEngine engine(64);
      Scheduler s(engine, opts(64));
      for (int j = 0; j < 3; ++j) {
        const std::vector<std::vector<int32_t>> inputs = {fake_ids(j, 5)};
        auto job = submit(s, inputs);
        ASSERT_TRUE(job.status.ok());
        auto r = job.future.get();
        ASSERT_TRUE(r.ok()) << r.status().to_string();
        expect_vectors(*r, inputs);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      s.shutdown();
    }
    EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(30));
  });
}

TEST(Scheduler, ShutdownFinishesAdmittedWorkThenRefuses) {
  FakeEngine engine(16);
  engine.set_delay(std::chrono::milliseconds(1));
  Scheduler s(engine, opts(16));
  std::vector<Submitted> jobs;
  for (int i = 0; i < 10; ++i) jobs.push_back(submit(s, {fake_ids(i, 10), fake_ids(i + 1, 10)}));
  s.shutdown();
  for (auto& j : jobs) {
    ASSERT_EQ(j.future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    EXPECT_TRUE(j.future.get().ok());
  }
  EXPECT_EQ(submit(s, {fake_ids(1, 2)}).status.code(), ErrorCode::kUnavailable);
}

TEST(Scheduler, SubmitFutureHoldsTheResultOrTheAdmissionError) {
  FakeEngine engine(16);
  Scheduler s(engine, opts(16));
  std::vector<std::vector<int32_t>> inputs = {fake_ids(1, 9), fake_ids(2, 3), fake_ids(3, 12)};  // three batches at budget 16
  Job job;
  job.inputs = inputs;
  auto result = s.submit_future(std::move(job)).get();
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  expect_vectors(*result, inputs);
  Job too_long;
  too_long.inputs = {fake_ids(1, 17)};  // past the engine's workspace: refused at submit, so the future is ready at once
  auto refused = s.submit_future(std::move(too_long));
  ASSERT_EQ(refused.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(refused.get().status().code(), ErrorCode::kOutOfRange);
}

}  // namespace
}  // namespace embedserve
