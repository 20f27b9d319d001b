// WorkerPool tests: tasks run off the caller's thread, try_post sheds load past the bound, and the
// destructor drains what was posted.
#include "scheduler/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

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

}  // namespace
}  // namespace embedserve
