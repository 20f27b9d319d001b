// WorkerPool: FIFO task queue served by a fixed set of threads.
#include "scheduler/worker_pool.h"

#include <algorithm>
#include <cstdint>

#include "scheduler/busy_poll.h"

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
    queued_.store(SIZE_MAX, std::memory_order_release);  // ends any thread's polling: it then sees stopping_
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

bool WorkerPool::try_post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || tasks_.size() >= max_pending_) return false;
    tasks_.push_back(std::move(task));
    queued_.store(tasks_.size(), std::memory_order_release);
  }
  cv_.notify_one();
  return true;
}

void WorkerPool::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
    queued_.store(tasks_.size(), std::memory_order_release);
  }
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
        lock.unlock();
        busy_poll::poll_until([this] { return queued_.load(std::memory_order_acquire) > 0; });
        lock.lock();
      }
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      // Drain before exiting: a posted completion must still answer its client.
      if (tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
      queued_.store(tasks_.size(), std::memory_order_release);
    }
    task();
  }
}

}  // namespace embedserve
