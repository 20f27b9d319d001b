// Metrics: lock-free counters and histograms, rendered in the Prometheus text format for GET /metrics.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/scheduler.h"
#include "server/replica_report.h"

namespace embedserve {

// A cumulative histogram with fixed upper bounds; observe() is wait-free, so any thread may record.
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends the _bucket/_sum/_count lines of metric `name`.
  void render(std::string_view name, std::string& out) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // one per bound, plus +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0.0};
};

class Metrics {
 public:
  // The routes that get their own label; everything else counts as "other", so a scanner probing random
  // paths cannot grow the label set.
  static constexpr std::array<std::string_view, 8> kRoutes = {
      "/v1/embeddings", "/embed", "/tokenize", "/v1/models", "/health", "/metrics", "/info", "other"};

  Metrics();
  void count_request(std::string_view route, int status);
  void observe_batch(const BatchReport& batch);
  void observe_queue_seconds(double seconds);
  // An input dropped part-way through its chunks (client gone, deadline passed): `sent` of its `total` tokens ran.
  void observe_abandoned_chunks(size_t sent, size_t total);

  // The whole exposition; the gauges are read at render time. Per-replica series once the model is loaded.
  std::string render(const SchedulerStats& queue, size_t requests_in_flight,
                     const std::vector<ReplicaStatus>& replicas = {},
                     const std::vector<ReplicaDevice>& devices = {}) const;

 private:
  static constexpr int kStatuses = 600;
  std::unique_ptr<std::atomic<uint64_t>[]> requests_;  // [route][status]
  std::atomic<uint64_t> tokens_embedded_{0};
  std::atomic<uint64_t> sequences_embedded_{0};
  std::atomic<uint64_t> batch_errors_{0};
  std::atomic<uint64_t> chunks_{0};
  std::atomic<uint64_t> inputs_abandoned_{0};
  std::atomic<uint64_t> tokens_abandoned_{0};
  Histogram batch_sequences_;
  Histogram batch_tokens_;
  Histogram queue_seconds_;
  Histogram compute_seconds_;
};

}  // namespace embedserve
