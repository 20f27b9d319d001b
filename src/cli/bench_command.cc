// embedserve bench: placeholder until the component behind it lands.
#include <cstdio>

#include "cli/commands.h"

namespace embedserve::cli {

int run_bench(int, char**) {
  std::fprintf(stderr, "embedserve bench: not available in this build yet\n");
  return 2;
}

}  // namespace embedserve::cli
