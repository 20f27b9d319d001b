// The safetensors format: parsing and fully validating one file's header (no I/O here, so it can be fuzzed).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace embedserve {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // as written: "BF16", "F16", "F32", "I64", ...
  size_t element_size = 0;     // bytes per element of dtype
  std::vector<int64_t> shape;
  uint64_t begin = 0;          // data_offsets, relative to the start of the data region
  uint64_t end = 0;
};

struct SafetensorsHeader {
  uint64_t data_start = 0;     // 8 + header length: where the data region begins in the file
  std::vector<SafetensorsEntry> tensors;  // in the order of their data
};

// The safetensors reference implementation refuses headers above 100 MB; so do we, before allocating.
inline constexpr uint64_t kMaxSafetensorsHeader = 100ull << 20;

// Parses the header of a whole safetensors file `file` (its bytes, e.g. a memory map) and checks it:
// the 8-byte little-endian length fits the file, the header is a JSON object, every tensor has a known
// dtype, a shape of non-negative sizes, and data_offsets [begin, end] inside the data region with
// end - begin == element size × numel (computed without overflow), and no two tensors overlap.
// Any violation is data_loss "<file_name>: tensor <name> ..."; an unknown dtype is unimplemented.
StatusOr<SafetensorsHeader> parse_safetensors_header(std::span<const uint8_t> file, const std::string& file_name);

}  // namespace embedserve
