// A read-only memory map of a whole file (weights are paged in on first touch and shared with the page cache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

#include "core/status.h"

namespace embedserve {

// Fails unless `path` (links followed) is a regular file: reading a FIFO blocks until something writes to it,
// and a device never ends. The error names the file and what it is.
Status require_regular_file(const std::filesystem::path& path);

class MappedFile {
 public:
  // Maps `path` read-only (PROT_READ, MAP_PRIVATE). An empty file maps to an empty span; anything but a
  // regular file is refused without blocking (see require_regular_file).
  static StatusOr<std::unique_ptr<MappedFile>> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  // Asks the kernel to start reading [offset, offset + length) ahead of use (a hint; errors are ignored).
  void will_need(size_t offset, size_t length) const;
  // Drops the whole pages inside [offset, offset + length) from this process's resident set (MADV_DONTNEED; the
  // kernel's page cache keeps them, and a later read maps them again, unchanged: nothing writes through the map).
  void release(size_t offset, size_t length) const;
  bool contains(const void* p) const { return p >= data_ && p < data_ + size_; }
  size_t offset_of(const void* p) const { return static_cast<size_t>(static_cast<const uint8_t*>(p) - data_); }

 private:
  MappedFile(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace embedserve
