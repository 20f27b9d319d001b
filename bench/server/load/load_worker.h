// LoadWorker: one thread's share of the connections, each with one request in flight at a time, driven by the
// thread's own epoll loop (nothing shared with other workers but the counter that hands out requests).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "http_response.h"
#include "latency_histogram.h"
#include "request_set.h"

namespace embedserve::load {

// CLOCK_MONOTONIC in nanoseconds: the clock every time in a run is read from.
int64_t now_ns();

struct RunPlan {
  const std::vector<PreparedRequest>* requests = nullptr;
  sockaddr_storage address{};
  socklen_t address_len = 0;
  std::string address_text;  // "HOST:PORT", for messages
  // once: every request exactly once, in file order, then stop (the bulk workload); otherwise the requests are
  // replayed in turn from start_ns to end_ns and only answers after measure_from_ns (the warm-up's end) count.
  bool once = false;
  int64_t start_ns = 0;
  int64_t measure_from_ns = 0;
  int64_t end_ns = 0;          // once: the limit after which requests not yet answered count as errors
  double rate_per_s = 0;       // this worker's open-loop rate; 0: closed loop (next request when one is answered)
  int64_t rate_offset_ns = 0;  // staggers the workers' schedules so their sends interleave
  int64_t timeout_ns = 0;      // a request (or a connect) not finished by then fails and its connection reopens
  std::atomic<uint64_t>* next_request = nullptr;  // shared: which request leaves next
  int worker_index = 0;
};

struct WorkerResult {
  LatencyHistogram latency;  // answers that passed the checks, within the measured window
  uint64_t ok = 0;
  uint64_t vectors = 0;
  uint64_t tokens = 0;
  uint64_t ok_with_tokens = 0;  // answers that reported usage.prompt_tokens
  std::map<std::string, uint64_t> errors;  // by kind: an HTTP status ("401"), or connect, closed, timeout, ...
  int64_t last_answer_ns = 0;
};

// Runs `connections` connections until the plan's end; Status only when the loop itself cannot run (epoll).
Status run_worker(const RunPlan& plan, int connections, WorkerResult& result);

}  // namespace embedserve::load
