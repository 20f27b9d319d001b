// WeightUploader: planning chunks, the CPU's parallel widening, and the CUDA path's entry (ops/cuda/cuda_upload.cc).
#include "ops/weight_upload.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>

#include "ops/convert.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include "ops/cuda/cuda_upload.h"
#endif

namespace embedserve::ops {
namespace {

uint16_t f32_to_bf16_rne(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Exponent bits all set: NaN or infinity. One OR over the block, so the scan vectorises.
template <typename Bits, Bits kExponent>
bool any_all_ones_exponent(const unsigned char* p, size_t count) {
  Bits seen = 0;
  for (size_t i = 0; i < count; ++i) {
    Bits b;
    std::memcpy(&b, p + i * sizeof(Bits), sizeof(Bits));  // mapped data need not be aligned
    seen |= static_cast<Bits>(((b & kExponent) == kExponent) ? 1 : 0);
  }
  return seen != 0;
}

int worker_count(int threads, size_t chunks) {
  int n = threads > 0 ? threads : static_cast<int>(std::min(16u, std::max(1u, std::thread::hardware_concurrency())));
  return static_cast<int>(std::min<size_t>(static_cast<size_t>(n), std::max<size_t>(chunks, 1)));
}

}  // namespace

bool any_nonfinite(const void* src, DType dtype, size_t count) {
  const auto* p = static_cast<const unsigned char*>(src);
  switch (dtype) {
    case DType::kF32: return any_all_ones_exponent<uint32_t, 0x7f800000u>(p, count);
    case DType::kBF16: return any_all_ones_exponent<uint16_t, 0x7f80u>(p, count);
    case DType::kF16: return any_all_ones_exponent<uint16_t, 0x7c00u>(p, count);
  }
  return false;
}

bool convert_checked(const void* src, DType src_dtype, void* dst, DType dst_dtype, size_t count) {
  const bool bad = any_nonfinite(src, src_dtype, count);
  if (src_dtype == dst_dtype) {
    std::memcpy(dst, src, count * dtype_size(dst_dtype));
    return bad;
  }
  // Widened in blocks that stay in cache, then narrowed where the destination is bf16.
  constexpr size_t kBlock = 4096;
  float wide[kBlock];
  const auto* s = static_cast<const unsigned char*>(src);
  for (size_t at = 0; at < count; at += kBlock) {
    const size_t n = std::min(kBlock, count - at);
    float* out = dst_dtype == DType::kF32 ? static_cast<float*>(dst) + at : wide;
    convert_to_f32_serial(s + at * dtype_size(src_dtype), src_dtype, out, n);
    if (dst_dtype == DType::kBF16) {
      uint16_t* narrow = static_cast<uint16_t*>(dst) + at;
      for (size_t i = 0; i < n; ++i) narrow[i] = f32_to_bf16_rne(wide[i]);
    }
  }
  return bad;
}

void WeightUploader::plan(const HostMatrix& part, void* dst, DType dst_dtype, size_t tensor) {
  const size_t n = static_cast<size_t>(part.rows * part.cols);
  const size_t src_size = dtype_size(part.dtype), dst_size = dtype_size(dst_dtype);
  for (size_t at = 0; at < n; at += kChunkElements)
    chunks_.push_back({static_cast<const char*>(part.data) + at * src_size, part.dtype,
                       static_cast<char*>(dst) + at * dst_size, dst_dtype, std::min(kChunkElements, n - at), tensor});
}

StatusOr<Weight> WeightUploader::add(std::span<const HostMatrix> parts, const std::string& name, const std::string& where) {
  if (parts.empty()) return internal_error("WeightUploader: no parts for " + name);
  int64_t rows = 0;
  for (const HostMatrix& p : parts) {
    if (p.cols != parts[0].cols) return internal_error("WeightUploader: the parts of " + name + " differ in columns");
    rows += p.rows;
  }
  const DType dtype = rows > 1 ? ctx_.weight_dtype() : ctx_.dtype();
  Weight w;
  EMBEDSERVE_ASSIGN_OR_RETURN(
      w.memory, Buffer::allocate(ctx_, static_cast<size_t>(rows * parts[0].cols) * dtype_size(dtype), name));
  w.tensor = w.memory.matrix(dtype, rows, parts[0].cols);
  // Errors name the part a bad value sits in: `name` lists stacked parts as "a + b".
  std::vector<std::string> part_names;
  for (size_t start = 0, plus; start <= name.size(); start = plus + 3) {
    plus = name.find(" + ", start);
    if (plus == std::string::npos) plus = name.size();
    part_names.push_back(name.substr(start, plus - start));
  }
  char* dst = static_cast<char*>(w.memory.data());
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& part = part_names.size() == parts.size() ? part_names[i] : name;
    names_.push_back("tensor " + part + (where.empty() ? "" : " in " + where));
    plan(parts[i], dst, dtype, names_.size() - 1);
    dst += static_cast<size_t>(parts[i].rows * parts[i].cols) * dtype_size(dtype);
  }
  return w;
}

size_t WeightUploader::held_bytes(const DeviceContext& ctx, int64_t rows, int64_t cols, DType stored, bool table) {
  const size_t n = static_cast<size_t>(rows * cols);
  if (table && ctx.device() == Device::kCpu) return n * dtype_size(stored);  // copied as stored (add_table)
  return n * dtype_size(rows > 1 ? ctx.weight_dtype() : ctx.dtype());       // as add() picks it
}

StatusOr<Weight> WeightUploader::add_table(const HostMatrix& table, const std::string& name, const std::string& where) {
  if (ctx_.device() != Device::kCpu) {
    const HostMatrix parts[] = {table};
    return add(parts, name, where);
  }
  // The CPU widens rows at lookup, so its copy keeps the stored dtype: half the bytes of f32 for bf16 tables.
  Weight w;
  EMBEDSERVE_ASSIGN_OR_RETURN(
      w.memory, Buffer::allocate(ctx_, static_cast<size_t>(table.rows * table.cols) * dtype_size(table.dtype), name));
  w.tensor = w.memory.matrix(table.dtype, table.rows, table.cols);
  names_.push_back("tensor " + name + (where.empty() ? "" : " in " + where));
  plan(table, w.memory.data(), table.dtype, names_.size() - 1);
  return w;
}

Status WeightUploader::first_nonfinite(const std::vector<uint8_t>& flagged) const {
  for (size_t i = 0; i < chunks_.size(); ++i) {
    if (!flagged[i]) continue;
    const UploadChunk& c = chunks_[i];
    const size_t size = dtype_size(c.src_dtype);
    size_t element = 0;
    while (element < c.count && !any_nonfinite(static_cast<const char*>(c.src) + element * size, c.src_dtype, 1)) ++element;
    size_t before = 0;  // elements of the same tensor in earlier chunks
    for (size_t j = 0; j < i; ++j)
      if (chunks_[j].tensor == c.tensor) before += chunks_[j].count;
    // NaN: a mantissa bit is set besides the all-ones exponent; infinity: none is.
    uint32_t bits = 0;
    std::memcpy(&bits, static_cast<const char*>(c.src) + element * size, size);
    const uint32_t mantissa = c.src_dtype == DType::kF32 ? 0x007fffffu : c.src_dtype == DType::kBF16 ? 0x007fu : 0x03ffu;
    return data_loss(names_[c.tensor] + " holds " + ((bits & mantissa) ? "NaN" : "Inf") + " at element " +
                     std::to_string(before + element) +
                     "; the checkpoint is corrupt (re-download it) or was saved from a diverged model");
  }
  return Status();
}

Status WeightUploader::finish(int threads) {
  std::vector<uint8_t> flagged(chunks_.size(), 0);  // one writer per chunk: no lock
  const int workers = worker_count(threads, chunks_.size());
  if (ctx_.device() == Device::kCpu) {
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i = next.fetch_add(1); i < chunks_.size(); i = next.fetch_add(1)) {
        const UploadChunk& c = chunks_[i];
        flagged[i] = convert_checked(c.src, c.src_dtype, c.dst, c.dst_dtype, c.count);
        if (copied_) copied_(c.src, c.count * dtype_size(c.src_dtype));
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < workers; ++t) pool.emplace_back(work);
    work();
    for (std::thread& t : pool) t.join();
  } else {
#if defined(EMBEDSERVE_HAVE_CUDA)
    EMBEDSERVE_RETURN_IF_ERROR(cuda_backend::upload_chunks(ctx_, chunks_, workers, &flagged));
#else
    return unimplemented("no CUDA backend in this build");
#endif
  }
  const Status bad = first_nonfinite(flagged);
  chunks_.clear();
  names_.clear();
  return bad;
}

}  // namespace embedserve::ops
