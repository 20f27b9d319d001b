// busy_poll: how long an idle server thread (network, worker, batcher) polls for new work before it sleeps.
#pragma once

#include <chrono>

namespace embedserve::busy_poll {

// A thread asleep on a condition variable or in epoll takes ~25 µs (p50) to ~45 µs (p90) to run again on the
// GPU machine's VM (2026-12-01, after 1 ms asleep; ~5 µs after 0.1 ms), and one request crosses four threads
// (network → worker → batcher → worker → network). Polling for a while before sleeping catches the next step of a
// request in flight, or the next request, without that wake-up: one 0.6B query through HTTP 1.35 → 1.21 ms p50
// (docs/PERFORMANCE.md). The price is CPU while idle: each polling thread keeps a core busy for up to this long
// after its last piece of work. `serve` sets it once the engine is loaded (--busy-poll-us: by default 3 ms where
// the engine runs on a GPU, 0 on the CPU, whose engine needs every core); 0 (the default) sleeps at once.
void set(std::chrono::microseconds duration);
std::chrono::microseconds get();

// A hint to the core that this thread is spinning (x86's pause), so a sibling hyperthread runs meanwhile.
inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Polls `ready` for up to get(); returns whether it became true (false at once when polling is off).
template <typename Ready>
bool poll_until(Ready ready) {
  const std::chrono::microseconds limit = get();
  if (limit.count() <= 0) return false;
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!ready()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    relax();
  }
  return true;
}

}  // namespace embedserve::busy_poll
