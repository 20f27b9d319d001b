// Metrics: recording and Prometheus text exposition (https://prometheus.io/docs/instrumenting/exposition_formats/).
#include "server/metrics.h"

#include <charconv>

namespace embedserve {
namespace {

void append_number(double v, std::string& out) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void append_uint(uint64_t v, std::string& out) { out += std::to_string(v); }

void header(std::string_view name, std::string_view type, std::string_view help, std::string& out) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

std::vector<double> powers_of_two(double first, int n) {
  std::vector<double> b;
  for (int i = 0; i < n; ++i) b.push_back(first * static_cast<double>(1ull << i));
  return b;
}

// One series per engine replica (--dp), labelled by replica and device, so a dashboard sees which GPU left.
void render_replicas(const std::vector<ReplicaStatus>& replicas, const std::vector<ReplicaDevice>& devices,
                     std::string& out) {
  const auto series = [&](std::string_view name, size_t r, uint64_t value) {
    out.append(name).append("{replica=\"").append(std::to_string(r)).append("\"");
    if (r < devices.size()) out.append(",device=\"").append(devices[r].device).append("\"");
    out.append("} ");
    append_uint(value, out);
    out += '\n';
  };
  size_t up = 0;
  for (const ReplicaStatus& r : replicas) up += r.up;
  header("embedserve_replicas_up", "gauge", "Engine replicas in rotation (--dp); fewer than configured: degraded.", out);
  out.append("embedserve_replicas_up ").append(std::to_string(up)).append("\n");
  header("embedserve_replicas_configured", "gauge", "Engine replicas started (--dp).", out);
  out.append("embedserve_replicas_configured ").append(std::to_string(replicas.size())).append("\n");
  header("embedserve_replica_up", "gauge", "1 while the replica serves, 0 once its engine failed.", out);
  for (const ReplicaStatus& r : replicas) series("embedserve_replica_up", r.index, r.up ? 1 : 0);
  header("embedserve_replica_batches_total", "counter", "Engine calls the replica ran, failed ones included.", out);
  for (const ReplicaStatus& r : replicas) series("embedserve_replica_batches_total", r.index, r.batches);
  header("embedserve_replica_tokens_total", "counter", "Tokens of the replica's successful engine calls.", out);
  for (const ReplicaStatus& r : replicas) series("embedserve_replica_tokens_total", r.index, r.tokens);
  if (devices.empty()) return;
  header("embedserve_replica_engine_bytes", "gauge", "Weights and workspace the replica's engine holds.", out);
  for (const ReplicaStatus& r : replicas)
    if (r.index < devices.size()) series("embedserve_replica_engine_bytes", r.index, devices[r.index].engine_bytes);
  if (devices.front().name.empty()) return;  // on the CPU there is no device memory of its own
  header("embedserve_gpu_memory_total_bytes", "gauge", "Memory of the replica's GPU.", out);
  for (const ReplicaStatus& r : replicas)
    if (r.index < devices.size())
      series("embedserve_gpu_memory_total_bytes", r.index, devices[r.index].memory_total_bytes);
  header("embedserve_gpu_memory_used_bytes", "gauge",
         "Memory in use on the replica's GPU (by any process) once the model was loaded.", out);
  for (const ReplicaStatus& r : replicas)
    if (r.index < devices.size())
      series("embedserve_gpu_memory_used_bytes", r.index, devices[r.index].memory_used_bytes);
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i] = 0;
}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void Histogram::render(std::string_view name, std::string& out) const {
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out.append(name).append("_bucket{le=\"");
    if (i < bounds_.size()) append_number(bounds_[i], out);
    else out += "+Inf";
    out += "\"} ";
    append_uint(cumulative, out);
    out += '\n';
  }
  out.append(name).append("_sum ");
  append_number(sum_.load(std::memory_order_relaxed), out);
  out.append("\n").append(name).append("_count ");
  append_uint(count_.load(std::memory_order_relaxed), out);
  out += '\n';
}

Metrics::Metrics()
    : requests_(new std::atomic<uint64_t>[kRoutes.size() * kStatuses]),
      batch_sequences_(powers_of_two(1, 13)),     // 1 .. 4096 sequences
      batch_tokens_(powers_of_two(16, 13)),       // 16 .. 65536 tokens
      queue_seconds_(powers_of_two(0.0005, 16)),  // 0.5 ms .. 16 s
      compute_seconds_(powers_of_two(0.0005, 16)) {
  for (size_t i = 0; i < kRoutes.size() * kStatuses; ++i) requests_[i] = 0;
}

void Metrics::count_request(std::string_view route, int status) {
  size_t r = kRoutes.size() - 1;
  for (size_t i = 0; i < kRoutes.size(); ++i)
    if (kRoutes[i] == route) r = i;
  if (status < 0 || status >= kStatuses) status = 0;
  requests_[r * kStatuses + static_cast<size_t>(status)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::observe_batch(const BatchReport& batch) {
  if (!batch.ok) {
    batch_errors_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  tokens_embedded_.fetch_add(batch.tokens, std::memory_order_relaxed);
  if (batch.chunk) chunks_.fetch_add(1, std::memory_order_relaxed);
  // An input in chunks counts once, at its last.
  if (!batch.partial_chunk) sequences_embedded_.fetch_add(batch.sequences, std::memory_order_relaxed);
  batch_sequences_.observe(static_cast<double>(batch.sequences));
  batch_tokens_.observe(static_cast<double>(batch.tokens));
  compute_seconds_.observe(batch.compute_seconds);
}

void Metrics::observe_queue_seconds(double seconds) { queue_seconds_.observe(seconds); }

void Metrics::observe_abandoned_chunks(size_t sent, size_t total) {
  inputs_abandoned_.fetch_add(1, std::memory_order_relaxed);
  tokens_abandoned_.fetch_add(total - sent, std::memory_order_relaxed);
}

std::string Metrics::render(const SchedulerStats& queue, size_t requests_in_flight,
                            const std::vector<ReplicaStatus>& replicas,
                            const std::vector<ReplicaDevice>& devices) const {
  std::string out;
  out.reserve(8192);
  header("embedserve_requests_total", "counter", "HTTP requests answered, by route and status code.", out);
  for (size_t r = 0; r < kRoutes.size(); ++r)
    for (int s = 0; s < kStatuses; ++s) {
      const uint64_t n = requests_[r * kStatuses + static_cast<size_t>(s)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      out.append("embedserve_requests_total{route=\"").append(kRoutes[r]).append("\",status=\"");
      out.append(std::to_string(s)).append("\"} ");
      append_uint(n, out);
      out += '\n';
    }
  header("embedserve_requests_in_flight", "gauge", "Requests read and not yet answered.", out);
  out.append("embedserve_requests_in_flight ").append(std::to_string(requests_in_flight)).append("\n");
  header("embedserve_queue_requests", "gauge", "Requests with inputs waiting for the engine.", out);
  out.append("embedserve_queue_requests ").append(std::to_string(queue.queued_jobs)).append("\n");
  header("embedserve_queue_inputs", "gauge", "Inputs waiting for the engine.", out);
  out.append("embedserve_queue_inputs ").append(std::to_string(queue.queued_inputs)).append("\n");
  header("embedserve_queue_tokens", "gauge", "Tokens waiting for the engine.", out);
  out.append("embedserve_queue_tokens ").append(std::to_string(queue.queued_tokens)).append("\n");
  header("embedserve_tokens_embedded_total", "counter", "Tokens run through the engine.", out);
  out.append("embedserve_tokens_embedded_total ");
  append_uint(tokens_embedded_.load(std::memory_order_relaxed), out);
  out += '\n';
  header("embedserve_sequences_embedded_total", "counter", "Inputs run through the engine.", out);
  out.append("embedserve_sequences_embedded_total ");
  append_uint(sequences_embedded_.load(std::memory_order_relaxed), out);
  out += '\n';
  header("embedserve_batch_errors_total", "counter", "Engine calls that failed.", out);
  out.append("embedserve_batch_errors_total ");
  append_uint(batch_errors_.load(std::memory_order_relaxed), out);
  out += '\n';
  header("embedserve_chunks_total", "counter", "Engine calls that ran one chunk of a longer input (chunked prefill).",
         out);
  out.append("embedserve_chunks_total ");
  append_uint(chunks_.load(std::memory_order_relaxed), out);
  out += '\n';
  header("embedserve_chunked_inputs_abandoned_total", "counter",
         "Inputs dropped part-way through their chunks because their client left or their deadline passed.", out);
  out.append("embedserve_chunked_inputs_abandoned_total ");
  append_uint(inputs_abandoned_.load(std::memory_order_relaxed), out);
  out += '\n';
  header("embedserve_chunked_tokens_abandoned_total", "counter",
         "Tokens of those inputs that never ran: the work saved by dropping them.", out);
  out.append("embedserve_chunked_tokens_abandoned_total ");
  append_uint(tokens_abandoned_.load(std::memory_order_relaxed), out);
  out += '\n';
  header("embedserve_batch_sequences", "histogram", "Sequences per engine call.", out);
  batch_sequences_.render("embedserve_batch_sequences", out);
  header("embedserve_batch_tokens", "histogram", "Tokens per engine call (no padding).", out);
  batch_tokens_.render("embedserve_batch_tokens", out);
  header("embedserve_queue_seconds", "histogram", "Time from admission to a request's first engine call.", out);
  queue_seconds_.render("embedserve_queue_seconds", out);
  header("embedserve_compute_seconds", "histogram", "Time per engine call.", out);
  compute_seconds_.render("embedserve_compute_seconds", out);
  if (!replicas.empty()) render_replicas(replicas, devices, out);
  return out;
}

}  // namespace embedserve
