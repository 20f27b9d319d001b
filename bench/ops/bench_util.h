// What the op benchmarks share: exit on a failed step (one line naming the tool and the step), comma lists.
#pragma once

#include <errno.h>  // program_invocation_short_name (glibc)

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace embedserve::bench {

inline void check(const Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, s.message().c_str());
  std::exit(1);
}

template <typename T>
T value(StatusOr<T> v, const char* what) {
  check(v.status(), what);
  return std::move(*v);
}

// "512,2048" → {512, 2048}: a benchmark's list argument.
inline std::vector<int> comma_list(const std::string& text) {
  std::vector<int> out;
  for (std::string s = text; !s.empty();) {
    const size_t comma = s.find(',');
    out.push_back(std::stoi(s.substr(0, comma)));
    s = comma == std::string::npos ? "" : s.substr(comma + 1);
  }
  return out;
}

}  // namespace embedserve::bench
