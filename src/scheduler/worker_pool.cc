// WorkerPool: FIFO task queue served by a fixed set of threads.
#include "scheduler/worker_pool.h"

#include <algorithm>
#include <cstdint>

namespace embedserve {

WorkerPool::WorkerPool(size_t threads, size_t max_pending) : max_pending_(max_pending) {
  threads = std::max<size_t>(threads, 1);
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  doorbell_.ring();
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool WorkerPool::try_post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || tasks_.size() >= max_pending_) return false;
    tasks_.push_back(std::move(task));
  }
  doorbell_.ring();
  cv_.notify_one();
  return true;
}

void WorkerPool::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  doorbell_.ring();
  cv_.notify_one();
}

size_t WorkerPool::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

void WorkerPool::loop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (tasks_.empty() && !stopping_) {
        // Poll before sleeping: the next task of a request in flight often comes within a few ms
        // (scheduler/busy_poll.h), and a sleeping thread takes tens of µs to wake.
        const uint64_t seen = doorbell_.rings();
        lock.unlock();
        doorbell_.poll_past(seen);
        lock.lock();
      }
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      // Drain before exiting: a posted completion must still answer its client.
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace embedserve
