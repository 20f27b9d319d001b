// WorkerPool: a few threads that run the server's CPU work (JSON parsing, tokenisation, serialisation)
// so the network threads only move bytes.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "scheduler/busy_poll.h"

namespace embedserve {

class WorkerPool {
 public:
  // `max_pending` bounds the tasks waiting for a thread that try_post accepts (admission control);
  // post() ignores it because completions of already-admitted work must never be dropped.
  WorkerPool(size_t threads, size_t max_pending);
  ~WorkerPool();  // runs every task already posted, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` unless max_pending tasks already wait; false means the caller should shed load (429).
  bool try_post(std::function<void()> task);
  // Queues `task` unconditionally (for completions of admitted work).
  void post(std::function<void()> task);
  size_t pending() const;

 private:
  void loop();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  size_t max_pending_;
  bool stopping_ = false;
  busy_poll::Doorbell doorbell_;  // rung with every notification of cv_: an idle thread polls it before it sleeps
  std::vector<std::thread> threads_;
};

}  // namespace embedserve
