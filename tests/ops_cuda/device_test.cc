// Device discovery never fails on a machine without a GPU, and reports sane properties where one exists.
#include <gtest/gtest.h>

#include "ops/cuda/cuda_device.h"

namespace embedserve::cuda {
namespace {

TEST(CudaDeviceTest, ListsDevicesOrNone) {
  auto devices = list_devices();
  ASSERT_TRUE(devices.ok()) << devices.status().to_string();
  for (const auto& d : *devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GE(d.compute_major, 7);
    EXPECT_GT(d.multiprocessors, 0);
    EXPECT_GT(d.total_memory_bytes, d.free_memory_bytes / 2);
  }
  EXPECT_NE(runtime_version(), "unknown");
}

}  // namespace
}  // namespace embedserve::cuda
