// --threads on the CPU holds on every thread that runs ops, not only the one that created the context: OpenMP's
// thread count is per thread, and the scheduler's batcher and tensor-parallel ranks are other threads.
#include <gtest/gtest.h>

#include <thread>

#include "ops/context.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops {
namespace {

TEST(CpuThreads, AnotherThreadRunningOpsGetsTheConfiguredCount) {
  ContextOptions every_core;
  every_core.device = Device::kCpu;
  every_core.threads = 0;
  ASSERT_TRUE(DeviceContext::create(every_core).ok());
  if (cpu::blas_threads() < 2) GTEST_SKIP() << "one core: one thread and every core are the same count";

  ContextOptions one;
  one.device = Device::kCpu;
  one.threads = 1;
  auto ctx = DeviceContext::create(one);
  ASSERT_TRUE(ctx.ok()) << ctx.status().to_string();
  int before = 0, inside = 0;
  std::thread([&] {
    before = cpu::calling_thread_team_size();  // a fresh thread: OpenMP's default, every core
    const ScopedDevice on_device(**ctx);
    inside = cpu::calling_thread_team_size();
  }).join();
  EXPECT_GT(before, 1);
  EXPECT_EQ(inside, 1);
  ASSERT_TRUE(DeviceContext::create(every_core).ok());  // the process-wide count back as the other tests expect
}

}  // namespace
}  // namespace embedserve::ops
