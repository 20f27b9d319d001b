// Random ids from getrandom(2) and their shape check.
#include "jobs/ids.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace embedserve::jobs {

StatusOr<std::string> random_id(std::string_view prefix) {
  uint8_t bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(std::string("getrandom failed while making an id: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(prefix);
  for (uint8_t b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 15];
  }
  return id;
}

bool well_formed_id(std::string_view id, std::string_view prefix) {
  if (id.size() != prefix.size() + 32 || id.substr(0, prefix.size()) != prefix) return false;
  for (char c : id.substr(prefix.size()))
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace embedserve::jobs
