// OMP_WAIT_POLICY=PASSIVE by default, through one re-exec before anything else starts (see the header).
#include "cli/thread_policy.h"

#include <unistd.h>

#include <cstdlib>

namespace embedserve::cli {

void ensure_passive_openmp_wait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (setenv("OMP_WAIT_POLICY", "PASSIVE", 0) != 0) return;
  execv("/proc/self/exe", argv);
  // exec failed (no /proc, say): carry on with the spinning default rather than fail to start.
}

}  // namespace embedserve::cli
