// busy_poll: one process-wide duration, read by every idle server thread before it sleeps.
#include "scheduler/busy_poll.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>

namespace embedserve::busy_poll {
namespace {

std::atomic<int64_t> poll_us{0};

}  // namespace

void set(std::chrono::microseconds duration) { poll_us.store(duration.count(), std::memory_order_relaxed); }

std::chrono::microseconds get() { return std::chrono::microseconds(poll_us.load(std::memory_order_relaxed)); }

std::chrono::microseconds outlasting(double query_seconds) {
  constexpr double kAtLeastUs = 3000, kAtMostUs = 50000;
  const double us = std::isfinite(query_seconds) ? 1.5 * query_seconds * 1e6 : 0;
  return std::chrono::microseconds(static_cast<int64_t>(std::clamp(us, kAtLeastUs, kAtMostUs)));
}

}  // namespace embedserve::busy_poll
