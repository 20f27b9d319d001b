// What CUDA devices this process can see: used by `--device auto` and the start-up log.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"

namespace embedserve::cuda {

struct DeviceProperties {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  int multiprocessors = 0;
  size_t total_memory_bytes = 0;
  size_t free_memory_bytes = 0;
};

// Every visible device; an empty list (not an error) when there is no driver or no GPU, so a CPU-only
// machine with the CUDA build still starts. The status carries why, for the log.
StatusOr<std::vector<DeviceProperties>> list_devices();

// The CUDA runtime version this binary was built with ("13.0"), and the driver's, or "none".
std::string runtime_version();
std::string driver_version();

}  // namespace embedserve::cuda
