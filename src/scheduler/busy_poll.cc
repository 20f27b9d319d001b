// busy_poll: one process-wide duration, read by every idle server thread before it sleeps.
#include "scheduler/busy_poll.h"

#include <atomic>
#include <cstdint>

namespace embedserve::busy_poll {
namespace {

std::atomic<int64_t> poll_us{0};

}  // namespace

void set(std::chrono::microseconds duration) { poll_us.store(duration.count(), std::memory_order_relaxed); }

std::chrono::microseconds get() { return std::chrono::microseconds(poll_us.load(std::memory_order_relaxed)); }

}  // namespace embedserve::busy_poll
