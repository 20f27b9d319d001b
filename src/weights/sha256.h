// SHA-256 (FIPS 180-4), to check downloaded LFS files against the hub's digests without a crypto library.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"

namespace embedserve {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  // The digest as 64 lowercase hex digits. The object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_{};
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

// Feeds a whole file to `h` (1 MiB reads); an unreadable file is io_error naming it.
Status sha256_update_from_file(Sha256& h, const std::filesystem::path& path);
// The sha256 of a whole file.
StatusOr<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace embedserve
