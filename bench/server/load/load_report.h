// The one JSON line a load run prints: the keys bench/server/http_load.py prints too, so scripts read either.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "latency_histogram.h"

namespace embedserve::load {

struct LoadReport {
  std::string workload;  // a label: the request file's name, or the GET route
  std::string mode;      // "closed" (next request on an answer), "open" (--rate), "once" (each request once)
  int connections = 0;
  int threads = 0;
  std::optional<double> rate;  // open loop: requests/s asked for
  double seconds = 0;          // the measured window (once: first send to last answer)
  uint64_t requests = 0;       // answers that passed every check, within the window
  std::map<std::string, uint64_t> errors;  // failures by kind, the warm-up's included
  uint64_t inputs = 0;                     // vectors in those answers
  std::optional<uint64_t> tokens;          // usage.prompt_tokens summed, when every answer reported it
  LatencyHistogram latency;                // nanoseconds
};

// {"tool": "embedserve_http_load", "workload": ..., "requests": ..., "errors": ..., "requests_per_s": ...,
//  "tokens_per_s": ..., "p50_ms": ..., "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms", ...} on one line.
std::string render_report(const LoadReport& report);

uint64_t total_errors(const LoadReport& report);

}  // namespace embedserve::load
