// Metrics tests: histogram buckets are cumulative with +Inf, and the exposition follows the text format.
#include "server/metrics.h"

#include <gtest/gtest.h>

namespace embedserve {
namespace {

TEST(Histogram, CumulativeBucketsSumAndCount) {
  Histogram h({1, 2, 4});
  for (double v : {0.5, 1.0, 1.5, 3.0, 100.0}) h.observe(v);
  std::string out;
  h.render("x", out);
  EXPECT_EQ(out,
            "x_bucket{le=\"1\"} 2\n"
            "x_bucket{le=\"2\"} 3\n"
            "x_bucket{le=\"4\"} 4\n"
            "x_bucket{le=\"+Inf\"} 5\n"
            "x_sum 106\n"
            "x_count 5\n");
}

TEST(Metrics, RendersCountersGaugesAndHistograms) {
  Metrics m;
  m.count_request("/v1/embeddings", 200);
  m.count_request("/v1/embeddings", 200);
  m.count_request("/random/probe", 404);
  m.observe_batch({3, 40, 0.002, true});
  m.observe_batch({1, 10, 0.001, false});
  SchedulerStats q;
  q.queued_jobs = 2;
  q.queued_inputs = 7;
  q.queued_tokens = 99;
  const std::string text = m.render(q, 5);
  for (const char* line : {
           "# TYPE embedserve_requests_total counter\n",
           "embedserve_requests_total{route=\"/v1/embeddings\",status=\"200\"} 2\n",
           "embedserve_requests_total{route=\"other\",status=\"404\"} 1\n",
           "embedserve_requests_in_flight 5\n",
           "embedserve_queue_requests 2\n",
           "embedserve_queue_inputs 7\n",
           "embedserve_queue_tokens 99\n",
           "embedserve_tokens_embedded_total 40\n",
           "embedserve_batch_errors_total 1\n",
           "# TYPE embedserve_batch_tokens histogram\n",
           "embedserve_batch_sequences_bucket{le=\"4\"} 1\n",
           "embedserve_batch_tokens_count 1\n",
           "embedserve_compute_seconds_count 1\n",
       })
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in\n" << text;
  EXPECT_EQ(text.find("/random/probe"), std::string::npos);
}

}  // namespace
}  // namespace embedserve
