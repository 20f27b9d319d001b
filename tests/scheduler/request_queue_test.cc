// RequestQueue's bulk yield against explicit clock readings: no query seen means no yield, however close `now` is
// to the steady clock's epoch (a freshly booted machine's), and an admitted query caps bulk for `recent`.
#include "scheduler/request_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace embedserve {
namespace {

// A job of `inputs` inputs of `tokens` tokens each, submitted at `at`.
std::shared_ptr<QueuedJob> job(size_t inputs, size_t tokens, SteadyClock::time_point at) {
  auto q = std::make_shared<QueuedJob>();
  q->job.inputs.assign(inputs, std::vector<int32_t>(tokens, 7));
  q->total_tokens = inputs * tokens;
  q->submitted = at;
  return q;
}

TEST(RequestQueue, BulkYieldsOnlyAfterAQueryWasSeen) {
  const SteadyClock::time_point boot{};  // the steady clock's epoch
  RequestQueue queue(/*interactive_max_tokens=*/50, /*interactive_weight=*/4.0, QueueLimits{}, /*chunk_tokens=*/0,
                     /*chunk_above=*/0, BulkYield{100, std::chrono::hours(1)});
  SequenceBatch batch;
  std::vector<BatchSlot> slots;
  ASSERT_TRUE(queue.admit(job(40, 50, boot + std::chrono::seconds(1))));  // 2,000 tokens: bulk
  // A minute after boot, no interactive job ever admitted: bulk takes the whole budget.
  queue.fill(1000, batch, slots, boot + std::chrono::minutes(1));
  EXPECT_EQ(batch.num_tokens(), 1000u);

  ASSERT_TRUE(queue.admit(job(1, 10, boot + std::chrono::minutes(2))));  // a query
  queue.fill(1000, batch, slots, boot + std::chrono::minutes(3));
  EXPECT_EQ(batch.num_tokens(), 110u) << "the query's 10 tokens and the yield's 100 of bulk";
  // Past `recent` since that query, the whole budget again.
  queue.fill(1000, batch, slots, boot + std::chrono::minutes(2) + std::chrono::hours(1));
  EXPECT_EQ(batch.num_tokens(), 900u) << "the rest of the bulk job";
}

}  // namespace
}  // namespace embedserve
