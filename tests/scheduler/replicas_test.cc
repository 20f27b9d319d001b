// Scheduler tests with several engine replicas (--dp) against FakeEngine: work goes to whichever replica is free,
// a chunked input stays on its replica, vectors do not depend on the replica, and engine faults (injected with the
// decorator serve uses for EMBEDSERVE_INJECT_ENGINE_FAILURE) take a replica out and retry its batch once.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <thread>

#include "engine/fault_injection.h"
#include "fake_engine.h"
#include "scheduler/scheduler.h"

namespace embedserve {
namespace {

using namespace std::chrono_literals;
using testing::FakeEngine;
using testing::fake_ids;
using testing::fake_vector;

constexpr int kHidden = 4;

std::future<StatusOr<JobResult>> submit(Scheduler& s, std::vector<std::vector<int32_t>> inputs) {
  Job job;
  job.inputs = std::move(inputs);
  return s.submit_future(std::move(job));
}

SchedulerOptions budget(size_t tokens, size_t chunk = 0) {
  SchedulerOptions o;
  o.max_num_batched_tokens = tokens;
  o.chunk_tokens = chunk;
  return o;
}

// Polls `done` for up to 5 s (the batchers run on their own threads).
template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 500 && !done(); ++i) std::this_thread::sleep_for(10ms);
  return done();
}

TEST(SchedulerReplicas, AFreeReplicaTakesTheNextBatchWhileAnotherIsBusy) {
  FakeEngine a(8, kHidden), b(8, kHidden);
  a.close_gate();
  b.close_gate();
  Scheduler s({&a, &b}, budget(8));
  auto r = submit(s, {fake_ids(1, 8), fake_ids(2, 8)});  // two batches of one input each
  // Both are in an engine at once: neither waited for the other's replica.
  a.wait_for_batches(1);
  b.wait_for_batches(1);
  a.open_gate();
  b.open_gate();
  auto result = r.get();
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  std::vector<float> expected = fake_vector(fake_ids(1, 8), kHidden);
  const auto second = fake_vector(fake_ids(2, 8), kHidden);
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(result->vectors, expected) << "rows in input order, whichever replica ran them";
  const auto replicas = s.replicas();
  ASSERT_EQ(replicas.size(), 2u);
  EXPECT_EQ(replicas[0].batches, 1u);
  EXPECT_EQ(replicas[1].batches, 1u);
  EXPECT_EQ(replicas[0].tokens + replicas[1].tokens, 16u);
}

TEST(SchedulerReplicas, AVectorHasTheSameBitsWhicheverReplicaComputesIt) {
  FakeEngine a(64, kHidden), b(64, kHidden), one(64, kHidden);
  a.set_delay(2ms);
  b.set_delay(2ms);
  Scheduler two({&a, &b}, budget(16));
  Scheduler single(one, budget(16));
  std::vector<std::vector<int32_t>> inputs;
  for (int i = 0; i < 40; ++i) inputs.push_back(fake_ids(i, 3 + i % 11));
  std::vector<std::future<StatusOr<JobResult>>> on_two, on_one;
  for (const auto& input : inputs) {
    on_two.push_back(submit(two, {input}));
    on_one.push_back(submit(single, {input}));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto x = on_two[i].get();
    auto y = on_one[i].get();
    ASSERT_TRUE(x.ok() && y.ok());
    ASSERT_EQ(x->vectors.size(), y->vectors.size());
    EXPECT_EQ(std::memcmp(x->vectors.data(), y->vectors.data(), x->vectors.size() * sizeof(float)), 0) << i;
  }
  EXPECT_GT(a.batches().size(), 0u) << "both replicas computed some of them";
  EXPECT_GT(b.batches().size(), 0u);
}

TEST(SchedulerReplicas, AChunkedInputStaysOnTheReplicaHoldingItsKeysWhileTheOtherServes) {
  FakeEngine a(8, kHidden, /*chunked_prefill=*/true), b(8, kHidden, /*chunked_prefill=*/true);
  a.set_delay(1ms);
  b.set_delay(1ms);
  Scheduler s({&a, &b}, budget(8, 8));
  const auto long_input = fake_ids(3, 100);  // 13 chunks of at most 8
  auto long_result = submit(s, {long_input});
  std::vector<std::future<StatusOr<JobResult>>> queries;
  for (int i = 0; i < 20; ++i) queries.push_back(submit(s, {fake_ids(100 + i, 4)}));
  for (int i = 0; i < 20; ++i) {
    auto q = queries[i].get();
    ASSERT_TRUE(q.ok()) << q.status().to_string();
    EXPECT_EQ(q->vectors, fake_vector(fake_ids(100 + i, 4), kHidden));
  }
  auto l = long_result.get();
  // FakeEngine refuses a chunk that does not continue its input on that engine: the vector proves the pinning.
  ASSERT_TRUE(l.ok()) << l.status().to_string();
  EXPECT_EQ(l->vectors, fake_vector(long_input, kHidden));
  size_t chunks_a = 0, chunks_b = 0;
  for (const auto& batch : a.batches()) chunks_a += batch.chunk.has_value();
  for (const auto& batch : b.batches()) chunks_b += batch.chunk.has_value();
  EXPECT_TRUE((chunks_a == 13 && chunks_b == 0) || (chunks_a == 0 && chunks_b == 13)) << chunks_a << " " << chunks_b;
  EXPECT_EQ(a.sequences_in_progress() + b.sequences_in_progress(), 0u);
}

TEST(SchedulerReplicas, AFailedReplicaLeavesTheRotationAndItsBatchRunsOnAnother) {
  auto failing_inner = std::make_unique<FakeEngine>(8, kHidden);
  FakeEngine* never_ran = failing_inner.get();
  auto failing = with_injected_failure(std::move(failing_inner), 0, 1);  // its first call fails
  FakeEngine healthy(8, kHidden);
  healthy.close_gate();
  std::atomic<int> failures{0};
  std::atomic<size_t> left{99};
  SchedulerOptions o = budget(8);
  o.on_replica_failed = [&](size_t replica, const Status& fault, size_t replicas_left) {
    EXPECT_EQ(replica, 0u);
    EXPECT_NE(fault.message().find("injected failure"), std::string::npos);
    left = replicas_left;
    ++failures;
  };
  Scheduler s({failing.get(), &healthy}, o);
  auto r = submit(s, {fake_ids(1, 8), fake_ids(2, 8)});
  // Replica 0 took one of the two batches and failed it, while the healthy one holds the other at its gate.
  ASSERT_TRUE(eventually([&] { return s.replicas_up() == 1; }));
  healthy.open_gate();
  auto result = r.get();
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  std::vector<float> expected = fake_vector(fake_ids(1, 8), kHidden);
  const auto second = fake_vector(fake_ids(2, 8), kHidden);
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(result->vectors, expected);
  EXPECT_EQ(healthy.batches().size(), 2u) << "its own batch and the failed replica's, retried";
  EXPECT_EQ(never_ran->batches().size(), 0u);
  // Reported on the failed replica's thread, which may still be on its way there.
  ASSERT_TRUE(eventually([&] { return failures.load() == 1; }));
  EXPECT_EQ(left.load(), 1u);
  const auto replicas = s.replicas();
  EXPECT_FALSE(replicas[0].up);
  EXPECT_NE(replicas[0].fault.find("injected failure of engine replica 0"), std::string::npos);
  EXPECT_TRUE(replicas[1].up);
  // Out of rotation for good: later work all goes to the healthy replica.
  auto later = submit(s, {fake_ids(3, 5), fake_ids(4, 5), fake_ids(5, 5)});
  ASSERT_TRUE(later.get().ok());
  EXPECT_EQ(healthy.batches().size(), 5u);
  EXPECT_EQ(s.replicas()[0].batches, 1u);
}

TEST(SchedulerReplicas, ABatchIsRetriedOnceAndNoReplicaLeftFailsEverything) {
  // A batch that fails on both replicas (FakeEngine's failing id): retried once, then answered 503, and with no
  // replica left the queue is answered and new work refused.
  FakeEngine a(8, kHidden), b(8, kHidden);
  std::promise<Status> all_failed;
  SchedulerOptions o = budget(8);
  o.on_all_replicas_failed = [&](const Status& last) { all_failed.set_value(last); };
  Scheduler s({&a, &b}, o);
  a.close_gate();
  b.close_gate();
  auto poison = submit(s, {{1, 2, FakeEngine::kFailingId}});
  ASSERT_TRUE(eventually([&] { return a.batches().size() + b.batches().size() == 1; }));
  auto queued = submit(s, {fake_ids(1, 8), fake_ids(2, 8), fake_ids(3, 8)});
  a.open_gate();
  b.open_gate();
  auto p = poison.get();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), ErrorCode::kUnavailable) << p.status().to_string();
  size_t poison_runs = 0;
  for (FakeEngine* e : {&a, &b})
    for (const auto& batch : e->batches()) poison_runs += batch.token_ids.back() == FakeEngine::kFailingId;
  EXPECT_EQ(poison_runs, 2u) << "once on each replica, not more";
  EXPECT_EQ(s.replicas_up(), 0u);
  ASSERT_EQ(all_failed.get_future().wait_for(5s), std::future_status::ready);
  // The queued job ran on the healthy replica before the retry failed it, or was answered 503: never lost.
  auto q = queued.get();
  if (!q.ok()) {
    EXPECT_EQ(q.status().code(), ErrorCode::kUnavailable);
  }
  auto refused = submit(s, {fake_ids(4, 4)}).get();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("every engine replica has failed"), std::string::npos);
}

TEST(SchedulerReplicas, AChunkedInputWhoseReplicaFailsIsAnswered503AndTheOtherKeepsServing) {
  FakeEngine a(8, kHidden, /*chunked_prefill=*/true), b(8, kHidden, /*chunked_prefill=*/true);
  Scheduler s({&a, &b}, budget(8, 8));
  auto long_input = fake_ids(3, 40);
  long_input[20] = FakeEngine::kFailingId;  // its third chunk fails in the backend
  auto long_result = submit(s, {long_input});
  auto l = long_result.get();
  ASSERT_FALSE(l.ok());
  EXPECT_EQ(l.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(l.status().message().find("part-way through its chunks"), std::string::npos) << l.status().to_string();
  EXPECT_EQ(s.replicas_up(), 1u);
  size_t runs = 0;
  for (FakeEngine* e : {&a, &b}) runs += e->batches().size();
  EXPECT_EQ(runs, 3u) << "not retried elsewhere: its keys and values were on the failed replica";
  auto after = submit(s, {fake_ids(7, 6)}).get();
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->vectors, fake_vector(fake_ids(7, 6), kHidden));
}

// An engine with no memory left for one batch (an input's keys and values): that batch fails, the replica serves on.
class OutOfMemoryForLongInputs final : public Engine {
 public:
  OutOfMemoryForLongInputs() : Engine(testing::fake_info(64, kHidden)) {}

 protected:
  Status run(const SequenceBatch& batch, std::span<float> out) override {
    if (batch.num_tokens() > 16) return resource_exhausted("GPU 0 has no room for this batch's keys and values");
    for (size_t i = 0; i < batch.num_sequences(); ++i) {
      const auto v = fake_vector(batch.sequence(i), kHidden);
      std::copy(v.begin(), v.end(), out.begin() + i * kHidden);
    }
    return Status();
  }
};

TEST(SchedulerReplicas, RunningOutOfMemoryForABatchFailsThatBatchOnly) {
  OutOfMemoryForLongInputs engine;
  Scheduler s(engine, budget(64));
  auto big = submit(s, {fake_ids(1, 40)}).get();
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(s.replicas_up(), 1u) << "the device works; only that batch did not fit";
  auto small = submit(s, {fake_ids(2, 8)}).get();
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->vectors, fake_vector(fake_ids(2, 8), kHidden));
}

TEST(SchedulerReplicas, AbandonWaitsForEveryReplicasEngineCall) {
  FakeEngine a(8, kHidden), b(8, kHidden);
  a.close_gate();
  b.close_gate();
  Scheduler s({&a, &b}, budget(8));
  auto first = submit(s, {fake_ids(1, 8)});
  auto second = submit(s, {fake_ids(2, 8)});
  a.wait_for_batches(1);
  b.wait_for_batches(1);
  const auto ready = [](std::future<StatusOr<JobResult>>& f) { return f.wait_for(0s) == std::future_status::ready; };
  b.open_gate();  // whichever job replica 1 took is answered; the other stays in replica 0's engine call
  ASSERT_TRUE(eventually([&] { return ready(first) || ready(second); }));
  EXPECT_FALSE(s.abandon(50ms)) << "replica 0 is still in its engine call";
  EXPECT_FALSE(ready(first) && ready(second));
  a.open_gate();
  EXPECT_TRUE(s.abandon(5s)) << "both batchers have left once the call ends";
  EXPECT_TRUE(ready(first) && ready(second)) << "the call in flight still answered its job";
}

TEST(InjectedFailures, ParsesReplicaAndCallAndRefusesNonsense) {
  auto one = parse_injected_failures("1:3");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->at(1), 3u);
  auto two = parse_injected_failures("0:5,1:2");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  for (const char* bad : {"1", "a:1", "1:", "1:0", "1:2,x"}) {
    auto r = parse_injected_failures(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("EMBEDSERVE_INJECT_ENGINE_FAILURE"), std::string::npos);
  }
}

TEST(InjectedFailures, CallsBeforeTheNthGoThroughAndTheNthAndLaterFail) {
  auto inner = std::make_unique<FakeEngine>(8, kHidden);
  FakeEngine* fake = inner.get();
  auto engine = with_injected_failure(std::move(inner), 2, 3);
  SequenceBatch batch;
  batch.add(fake_ids(1, 4));
  std::vector<float> out(kHidden);
  EXPECT_TRUE(engine->embed(batch, out).ok());
  EXPECT_TRUE(engine->embed(batch, out).ok());
  EXPECT_EQ(out, fake_vector(fake_ids(1, 4), kHidden));
  const Status third = engine->embed(batch, out);
  EXPECT_EQ(third.code(), ErrorCode::kInternal);
  EXPECT_NE(third.message().find("replica 2 at its call 3"), std::string::npos) << third.to_string();
  EXPECT_FALSE(engine->embed(batch, out).ok()) << "a failed device stays failed";
  EXPECT_EQ(fake->batches().size(), 2u);
  SequenceBatch refused;
  refused.add(std::vector<int32_t>{5000});
  EXPECT_EQ(engine->validate(refused, out).code(), ErrorCode::kInvalidArgument) << "validation is the engine's own";
}

}  // namespace
}  // namespace embedserve
