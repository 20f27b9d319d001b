// embedserve tokenize: placeholder until the component behind it lands.
#include <cstdio>

#include "cli/commands.h"

namespace embedserve::cli {

int run_tokenize(int, char**) {
  std::fprintf(stderr, "embedserve tokenize: not available in this build yet\n");
  return 2;
}

}  // namespace embedserve::cli
