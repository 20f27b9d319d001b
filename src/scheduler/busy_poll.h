// busy_poll: how long an idle server thread (network, worker, batcher) polls for new work before it sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace embedserve::busy_poll {

// A thread asleep on a condition variable or in epoll takes ~25 µs (p50) to ~45 µs (p90) to run again on the
// GPU machine's VM (2026-12-01, after 1 ms asleep; ~5 µs after 0.1 ms), and one request crosses four threads
// (network → worker → batcher → worker → network). Polling for a while before sleeping catches the next step of a
// request in flight, or the next request, without that wake-up: one 0.6B query through HTTP 1.40 → 1.19 ms p50
// (docs/PERFORMANCE.md). The price is CPU while idle: each polling thread keeps a core busy for up to this long
// after its last piece of work. `serve` sets it once the engine is loaded (--busy-poll-us: by default outlasting()
// where the engine runs on a GPU, 0 on the CPU, whose engine needs every core); 0 (the default) sleeps at once.
void set(std::chrono::microseconds duration);
std::chrono::microseconds get();

// --busy-poll-us auto on a GPU: long enough to outlast one query's engine call (`query_seconds`, as the engine timed
// it at load; 0 if unknown), since the network and tokenizer threads that handed a query on are idle until its answer
// comes back and one asleep by then pays a wake-up: 1.5 × that call, at least 3 ms, at most 50 ms (a CPU-bound
// guess at a GPU's query must not hold cores for a second). The 8B's 4.3 ms query through HTTP: 4.59 → 4.49–4.52 ms
// p50 with polling that outlasts it (docs/PERFORMANCE.md, 2026-12-02 04:19).
std::chrono::microseconds outlasting(double query_seconds);

// A hint to the core that this thread is spinning (x86's pause), so a sibling hyperthread runs meanwhile.
inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// What a thread polls before it sleeps on a condition variable: whoever changes what the thread waits for, and
// notifies the condition variable, rings the bell too (a stop included, so a stop never waits out a poll).
class Doorbell {
 public:
  void ring() { rings_.fetch_add(1, std::memory_order_release); }
  // Read under the waiter's lock, before it lets go of it to poll: a ring after that is a change it has not seen.
  uint64_t rings() const { return rings_.load(std::memory_order_acquire); }
  // Polls for up to get() until the bell has rung past `seen`; returns at once when polling is off.
  void poll_past(uint64_t seen) const {
    const std::chrono::microseconds limit = get();
    if (limit.count() <= 0) return;
    const auto until = std::chrono::steady_clock::now() + limit;
    while (rings() == seen && std::chrono::steady_clock::now() < until) relax();
  }

 private:
  std::atomic<uint64_t> rings_{0};
};

}  // namespace embedserve::busy_poll
