// What a kernel's launch needs to know of the current device (multiprocessors, compute capability), asked once.
#pragma once

#include "core/status.h"

namespace embedserve::cuda {

struct DeviceFacts {
  int multiprocessors = 0;
  int compute_major = 0;
  int compute_minor = 0;
  bool is_sm90() const { return compute_major == 9 && compute_minor == 0; }
};

// The current device's facts, asked of the driver on a device's first call and cached per device (launches are
// on the hot path; the facts never change while the process lives). Thread-safe.
Status current_device_facts(DeviceFacts* facts);

}  // namespace embedserve::cuda
