// /health's shapes with engine replicas (healthy, degraded, unhealthy), /info's replica list, and the per-replica
// Prometheus series.
#include "server/replica_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "server/metrics.h"

namespace embedserve {
namespace {

std::vector<ReplicaStatus> two_replicas(bool first_up, bool second_up) {
  return {{0, first_up, 7, 700, first_up ? "" : "cudaErrorLaunchFailure on 0"},
          {1, second_up, 5, 500, second_up ? "" : "cudaErrorLaunchFailure on 1"}};
}

TEST(ReplicaHealth, EveryReplicaUpKeepsTheSingleEngineShape) {
  const ServerResponse r = health_response(two_replicas(true, true));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"status":"healthy"})");
}

TEST(ReplicaHealth, SomeReplicaDownIsDegradedAndStill200) {
  const ServerResponse r = health_response(two_replicas(false, true));
  EXPECT_EQ(r.status, 200) << "a balancer keeps sending to a server that still answers";
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["status"], "degraded");
  EXPECT_EQ(body["replicas"]["up"], 1);
  EXPECT_EQ(body["replicas"]["total"], 2);
  ASSERT_EQ(body["replicas"]["failed"].size(), 1u);
  EXPECT_EQ(body["replicas"]["failed"][0]["replica"], 0);
  EXPECT_EQ(body["replicas"]["failed"][0]["fault"], "cudaErrorLaunchFailure on 0");
}

TEST(ReplicaHealth, NoReplicaLeftIs503) {
  const ServerResponse r = health_response(two_replicas(false, false));
  EXPECT_EQ(r.status, 503);
  const auto body = nlohmann::json::parse(r.body);
  EXPECT_EQ(body["status"], "unhealthy");
  EXPECT_EQ(body["replicas"]["up"], 0);
  EXPECT_EQ(body["replicas"]["failed"].size(), 2u);
}

TEST(ReplicaInfo, ListsWhereEachRunsAndWhetherItServes) {
  std::string out;
  JsonWriter w(out);
  write_replicas(w, two_replicas(true, false),
                 {{"cuda:0", "NVIDIA H200", 150'000, 20'000, 9'000}, {"cuda:1", "NVIDIA H200", 150'000, 19'000, 9'000}});
  const auto list = nlohmann::json::parse(out);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["device"], "cuda:0");
  EXPECT_EQ(list[0]["name"], "NVIDIA H200");
  EXPECT_EQ(list[0]["memory_total_bytes"], 150'000);
  EXPECT_EQ(list[0]["memory_used_bytes"], 20'000);
  EXPECT_EQ(list[0]["engine_bytes"], 9'000);
  EXPECT_TRUE(list[0]["up"]);
  EXPECT_FALSE(list[0].contains("fault"));
  EXPECT_FALSE(list[1]["up"]);
  EXPECT_EQ(list[1]["fault"], "cudaErrorLaunchFailure on 1");
}

TEST(ReplicaMetrics, OneSeriesPerReplicaLabelledByDevice) {
  Metrics m;
  const std::string out = m.render({}, 0, two_replicas(false, true),
                                   {{"cuda:0", "NVIDIA H200", 150, 20, 9}, {"cuda:1", "NVIDIA H200", 150, 19, 9}});
  for (const char* line : {"embedserve_replicas_up 1\n", "embedserve_replicas_configured 2\n",
                           "embedserve_replica_up{replica=\"0\",device=\"cuda:0\"} 0\n",
                           "embedserve_replica_up{replica=\"1\",device=\"cuda:1\"} 1\n",
                           "embedserve_replica_batches_total{replica=\"0\",device=\"cuda:0\"} 7\n",
                           "embedserve_replica_tokens_total{replica=\"1\",device=\"cuda:1\"} 500\n",
                           "embedserve_gpu_memory_total_bytes{replica=\"1\",device=\"cuda:1\"} 150\n",
                           "embedserve_gpu_memory_used_bytes{replica=\"0\",device=\"cuda:0\"} 20\n",
                           "# TYPE embedserve_replica_up gauge\n"})
    EXPECT_NE(out.find(line), std::string::npos) << line;
  EXPECT_EQ(m.render({}, 0).find("embedserve_replica"), std::string::npos) << "no series before the model is loaded";
}

}  // namespace
}  // namespace embedserve
