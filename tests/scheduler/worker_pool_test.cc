// WorkerPool tests: tasks run off the caller's thread, try_post sheds load past the bound, and the
// destructor drains what was posted.
#include "scheduler/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "busy_poll_cases.h"

namespace embedserve {
namespace {

TEST(WorkerPool, RunsTasksOnItsOwnThreads) {
  WorkerPool pool(2, 16);
  std::promise<std::thread::id> where;
  ASSERT_TRUE(pool.try_post([&] { where.set_value(std::this_thread::get_id()); }));
  EXPECT_NE(where.get_future().get(), std::this_thread::get_id());
}

TEST(WorkerPool, TryPostRefusesPastTheBoundButPostDoesNot) {
  WorkerPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.try_post([&] { started.set_value(); gate.wait(); }));
  started.get_future().wait();  // the only thread is busy; the next tasks wait in the queue
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.try_post([&] { ++ran; }));
  EXPECT_TRUE(pool.try_post([&] { ++ran; }));
  EXPECT_FALSE(pool.try_post([&] { ++ran; }));
  pool.post([&] { ++ran; });
  EXPECT_EQ(pool.pending(), 3u);
  release.set_value();
  while (ran.load() < 3) std::this_thread::yield();
  EXPECT_EQ(ran.load(), 3);
}

TEST(WorkerPool, DestructorRunsEveryPostedTask) {
  std::atomic<int> ran{0};
  {
    WorkerPool pool(2, 1000);
    for (int i = 0; i < 200; ++i) pool.post([&] { ++ran; });
  }
  EXPECT_EQ(ran.load(), 200);
}

// With busy polling on (scheduler/busy_poll.h) idle threads poll for tasks before they sleep: tasks posted while
// they poll, and after they gave up and slept, run; the destructor ends the polling at once rather than after a
// poll of a minute.
TEST(WorkerPool, PollingThreadsRunEveryTaskAndStopWithoutWaitingOutThePoll) {
  testing::with_busy_polling([] {
    const auto start = std::chrono::steady_clock::now();
    {
      WorkerPool pool(2, 16);
      for (int i = 0; i < 3; ++i) {
        std::promise<void> ran;
        pool.post([&] { ran.set_value(); });
        ran.get_future().wait();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  });
}

}  // namespace
}  // namespace embedserve
