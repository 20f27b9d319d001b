// Parsing and validating a safetensors header. Every number in it is untrusted: sizes are multiplied with
// overflow checks and offsets compared against the actual file length before anything is read through them.
#include "weights/safetensors.h"

#include <algorithm>
#include <string_view>

#include <nlohmann/json.hpp>

namespace embedserve {

using nlohmann::json;

namespace {

// Element sizes of every dtype the safetensors format defines (sub-byte F4/F6 types are left out: they are
// not byte-addressable per element and no Qwen3 checkpoint uses them).
size_t element_size(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2" ||
      dtype == "F8_E8M0")
    return 1;
  return 0;
}

bool read_u64(const json& v, uint64_t& out) {
  if (v.is_number_unsigned()) { out = v.get<uint64_t>(); return true; }
  if (v.is_number_integer()) {
    int64_t s = v.get<int64_t>();
    if (s < 0) return false;
    out = static_cast<uint64_t>(s);
    return true;
  }
  return false;
}

StatusOr<SafetensorsEntry> parse_entry(const std::string& name, const json& v, uint64_t data_size,
                                       const std::string& file) {
  const std::string where = file + ": tensor " + name;
  if (!v.is_object()) return data_loss(where + ": header entry is not an object");
  SafetensorsEntry e;
  e.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) return data_loss(where + ": header entry has no dtype string");
  e.dtype = dt->get<std::string>();
  e.element_size = element_size(e.dtype);
  if (e.element_size == 0) return unimplemented(where + " has dtype " + e.dtype + ", which safetensors does not define");

  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) return data_loss(where + ": header entry has no shape list");
  if (sh->size() > 16) return data_loss(where + ": shape has " + std::to_string(sh->size()) + " dimensions");
  // numel × element size must be representable; __builtin_mul_overflow keeps a hostile header from wrapping.
  uint64_t nbytes = e.element_size;
  for (const auto& d : *sh) {
    uint64_t dim = 0;
    if (!read_u64(d, dim) || dim > static_cast<uint64_t>(INT64_MAX))
      return data_loss(where + ": shape entries must be non-negative integers");
    e.shape.push_back(static_cast<int64_t>(dim));
    if (__builtin_mul_overflow(nbytes, dim, &nbytes)) return data_loss(where + ": shape is too large (size overflows)");
  }

  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2 || !read_u64((*off)[0], e.begin) ||
      !read_u64((*off)[1], e.end))
    return data_loss(where + ": data_offsets must be a list of two non-negative integers");
  if (e.begin > e.end)
    return data_loss(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     "] end before they begin");
  if (e.end > data_size)
    return data_loss(where + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                     "] reach past the data region of " + std::to_string(data_size) +
                     " bytes (the file is truncated or corrupt)");
  if (e.end - e.begin != nbytes)
    return data_loss(where + ": data_offsets span " + std::to_string(e.end - e.begin) + " bytes, but " + e.dtype +
                     " × " + std::to_string(nbytes / e.element_size) + " elements need " + std::to_string(nbytes));
  return e;
}

}  // namespace

StatusOr<SafetensorsHeader> parse_safetensors_header(std::span<const uint8_t> bytes, const std::string& file) {
  if (bytes.size() < 8)
    return data_loss(file + ": " + std::to_string(bytes.size()) +
                     " bytes is too short for a safetensors file (truncated?)");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];  // little-endian on every host
  if (n > kMaxSafetensorsHeader)
    return data_loss(file + ": header length " + std::to_string(n) + " exceeds the 100 MB limit (not a safetensors file?)");
  if (n > bytes.size() - 8)
    return data_loss(file + ": header length " + std::to_string(n) + " reaches past the end of the " +
                     std::to_string(bytes.size()) + "-byte file (truncated?)");
  const char* text = reinterpret_cast<const char*>(bytes.data() + 8);
  json header = json::parse(text, text + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object())
    return data_loss(file + ": the header is not a JSON object (truncated or not a safetensors file)");

  SafetensorsHeader out;
  out.data_start = 8 + n;
  const uint64_t data_size = bytes.size() - out.data_start;
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) return data_loss(file + ": __metadata__ is not an object");
      continue;
    }
    EMBEDSERVE_ASSIGN_OR_RETURN(SafetensorsEntry e, parse_entry(name, value, data_size, file));
    out.tensors.push_back(std::move(e));
  }

  std::sort(out.tensors.begin(), out.tensors.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 1; i < out.tensors.size(); ++i) {
    const auto& prev = out.tensors[i - 1];
    const auto& cur = out.tensors[i];
    if (cur.begin < prev.end)
      return data_loss(file + ": tensor " + cur.name + " overlaps tensor " + prev.name + " (data_offsets [" +
                       std::to_string(cur.begin) + ", " + std::to_string(cur.end) + "] and [" +
                       std::to_string(prev.begin) + ", " + std::to_string(prev.end) + "])");
  }
  return out;
}

}  // namespace embedserve
