// WeightUploader: planning chunks, the CPU's parallel widening, and the CUDA path's entry (ops/cuda/cuda_upload.cc).
#include "ops/weight_upload.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>

#include "core/float8.h"
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
    case DType::kF8E4M3: return any_all_ones_exponent<uint8_t, 0x7fu>(p, count);  // e4m3fn: NaN is all seven bits
  }
  return false;
}

namespace {

float widen_one(const void* src, DType dtype, int64_t i) {
  const auto* p = static_cast<const unsigned char*>(src) + static_cast<size_t>(i) * dtype_size(dtype);
  float v;
  convert_to_f32_serial(p, dtype, &v, 1);
  return v;
}

}  // namespace

bool fill_chunk(const UploadChunk& c, void* dst, float* dst_scales) {
  if (c.dst_dtype != DType::kF8E4M3) return convert_chunk(c, dst);
  // Whole rows; row r starts at source element r·cols (a column slice's rows sit src_stride apart).
  const int64_t rows = c.rows();
  auto* codes = static_cast<uint8_t*>(dst);
  bool bad = false;
  if (c.src_dtype == DType::kF8E4M3) {
    // An FP8 checkpoint: codes as stored, scales widened (a per-tensor scale repeated for every row).
    for (int64_t r = 0; r < rows; ++r) {
      const void* from = c.source_element(static_cast<size_t>(r * c.cols));
      bad |= any_nonfinite(from, c.src_dtype, static_cast<size_t>(c.cols));
      std::memcpy(codes + r * c.cols, from, static_cast<size_t>(c.cols));
      dst_scales[r] = widen_one(c.src_scales, c.src_scale_dtype, c.src_scale_per_row ? r : 0);
      bad |= !std::isfinite(dst_scales[r]) || dst_scales[r] <= 0.0f;
    }
    return bad;
  }
  std::vector<float> row(static_cast<size_t>(c.cols));
  for (int64_t r = 0; r < rows; ++r) {
    const void* from = c.source_element(static_cast<size_t>(r * c.cols));
    bad |= any_nonfinite(from, c.src_dtype, static_cast<size_t>(c.cols));
    convert_to_f32_serial(from, c.src_dtype, row.data(), row.size());
    dst_scales[r] = fp8::quantize_row(row.data(), c.cols, codes + r * c.cols);
  }
  return bad;
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

bool convert_chunk(const UploadChunk& c, void* dst) {
  if (c.row_elements == 0) return convert_checked(c.src, c.src_dtype, dst, c.dst_dtype, c.count);
  bool bad = false;
  for (size_t at = 0; at < c.count; at += c.row_elements)
    bad |= convert_checked(c.source_element(at), c.src_dtype, static_cast<char*>(dst) + at * dtype_size(c.dst_dtype),
                           c.dst_dtype, c.row_elements);
  return bad;
}


void WeightUploader::plan(const HostMatrix& part, void* dst, DType dst_dtype, size_t tensor, float* dst_scales) {
  if (dst_dtype == DType::kF8E4M3) {
    // Whole rows per chunk (a row's scale needs the whole row); the scales take at most half a staging buffer.
    const int64_t per_chunk = std::max<int64_t>(
        1, std::min<int64_t>(static_cast<int64_t>(kChunkElements) / part.cols, static_cast<int64_t>(kChunkElements) / 8));
    const size_t src_size = dtype_size(part.dtype);
    for (int64_t r = 0; r < part.rows; r += per_chunk) {
      const int64_t n = std::min(per_chunk, part.rows - r);
      UploadChunk c;
      c.src = static_cast<const char*>(part.data) + static_cast<size_t>(r * part.row_stride()) * src_size;
      if (part.row_stride() != part.cols) {  // a column slice (tensor parallelism): each row from its place
        c.row_elements = static_cast<size_t>(part.cols);
        c.src_stride = static_cast<size_t>(part.row_stride());
      }
      c.src_dtype = part.dtype;
      c.dst = static_cast<char*>(dst) + r * part.cols;
      c.dst_dtype = dst_dtype;
      c.count = static_cast<size_t>(n * part.cols);
      c.tensor = tensor;
      c.cols = part.cols;
      c.dst_scales = dst_scales + r;
      if (part.scales) {
        c.src_scale_per_row = part.scale_count == part.rows;
        c.src_scale_dtype = part.scale_dtype;
        c.src_scales = static_cast<const char*>(part.scales) +
                       (c.src_scale_per_row ? static_cast<size_t>(r) * dtype_size(part.scale_dtype) : 0);
      }
      chunks_.push_back(c);
    }
    return;
  }
  const size_t n = static_cast<size_t>(part.rows * part.cols);
  const size_t src_size = dtype_size(part.dtype), dst_size = dtype_size(dst_dtype);
  if (part.row_stride() != part.cols) {
    // A column slice: chunks of whole rows (at least one), each row copied from its place in the source.
    const size_t cols = static_cast<size_t>(part.cols), stride = static_cast<size_t>(part.row_stride());
    const size_t rows_per_chunk = std::max<size_t>(1, kChunkElements / cols);
    for (size_t row = 0; row < static_cast<size_t>(part.rows); row += rows_per_chunk) {
      const size_t rows = std::min(rows_per_chunk, static_cast<size_t>(part.rows) - row);
      chunks_.push_back({static_cast<const char*>(part.data) + row * stride * src_size, part.dtype,
                         static_cast<char*>(dst) + row * cols * dst_size, dst_dtype, rows * cols, tensor, cols, stride});
    }
    return;
  }
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
  return add_as(parts, rows > 1 ? ctx_.weight_dtype() : ctx_.dtype(), name, where);
}

StatusOr<Weight> WeightUploader::add_as(std::span<const HostMatrix> parts, DType dtype, const std::string& name,
                                        const std::string& where) {
  int64_t rows = 0;
  for (const HostMatrix& p : parts) {
    rows += p.rows;
    if (p.dtype == DType::kF8E4M3 && dtype != DType::kF8E4M3)
      return invalid_argument("tensor " + name + " is stored as FP8 e4m3, which only an fp8 engine reads "
                              "(--quantization fp8; the FP8 GEMMs need a GPU with compute capability 8.9+ or the CPU)");
    if (p.dtype == DType::kF8E4M3 && (!p.scales || (p.scale_count != 1 && p.scale_count != p.rows)))
      return invalid_argument("tensor " + name + " is stored as FP8 e4m3 without a weight_scale of one value or one "
                              "per output channel (" + std::to_string(p.rows) + ")");
  }
  const bool fp8 = dtype == DType::kF8E4M3;
  if (fp8 && static_cast<size_t>(parts[0].cols) > kChunkElements)
    return internal_error("WeightUploader: rows of " + name + " are too long to quantise in one chunk");
  const size_t bytes = fp8 ? fp8_scales_offset(rows, parts[0].cols) + static_cast<size_t>(rows) * sizeof(float)
                           : static_cast<size_t>(rows * parts[0].cols) * dtype_size(dtype);
  Weight w;
  EMBEDSERVE_ASSIGN_OR_RETURN(w.memory, Buffer::allocate(ctx_, bytes, name));
  w.tensor = w.memory.matrix(dtype, rows, parts[0].cols);
  float* scales = fp8 ? reinterpret_cast<float*>(static_cast<char*>(w.memory.data()) +
                                                 fp8_scales_offset(rows, parts[0].cols))
                      : nullptr;
  w.tensor.scales = scales;
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
    plan(parts[i], dst, dtype, names_.size() - 1, scales);
    dst += static_cast<size_t>(parts[i].rows * parts[i].cols) * dtype_size(dtype);
    if (scales) scales += parts[i].rows;
  }
  return w;
}

size_t WeightUploader::held_bytes(const DeviceContext& ctx, int64_t rows, int64_t cols, DType stored, bool table) {
  const size_t n = static_cast<size_t>(rows * cols);
  if (table && ctx.device() == Device::kCpu) return n * dtype_size(stored);  // copied as stored (add_table)
  if (table) return n * dtype_size(ctx.dtype());                              // never quantised
  if (rows > 1 && ctx.weight_dtype() == DType::kF8E4M3)                       // codes, then a scale per row
    return fp8_scales_offset(rows, cols) + static_cast<size_t>(rows) * sizeof(float);
  return n * dtype_size(rows > 1 ? ctx.weight_dtype() : ctx.dtype());       // as add() picks it
}

StatusOr<Weight> WeightUploader::add_table(const HostMatrix& table, const std::string& name, const std::string& where) {
  if (ctx_.device() != Device::kCpu) {
    // In the compute dtype: a lookup is a row copy, and FP8 checkpoints keep their table unquantised too.
    const HostMatrix parts[] = {table};
    return add_as(parts, ctx_.dtype(), name, where);
  }
  // The CPU widens rows at lookup, so its copy keeps the stored dtype: half the bytes of f32 for bf16 tables.
  Weight w;
  EMBEDSERVE_ASSIGN_OR_RETURN(
      w.memory, Buffer::allocate(ctx_, static_cast<size_t>(table.rows * table.cols) * dtype_size(table.dtype), name));
  w.tensor = w.memory.matrix(table.dtype, table.rows, table.cols);
  names_.push_back("tensor " + name + (where.empty() ? "" : " in " + where));
  plan(table, w.memory.data(), table.dtype, names_.size() - 1, nullptr);
  return w;
}

Status WeightUploader::first_nonfinite(const std::vector<uint8_t>& flagged) const {
  for (size_t i = 0; i < chunks_.size(); ++i) {
    if (!flagged[i]) continue;
    const UploadChunk& c = chunks_[i];
    const size_t size = dtype_size(c.src_dtype);
    size_t element = 0;
    while (element < c.count && !any_nonfinite(c.source_element(element), c.src_dtype, 1)) ++element;
    size_t before = 0;  // elements of the same tensor in earlier chunks
    for (size_t j = 0; j < i; ++j)
      if (chunks_[j].tensor == c.tensor) before += chunks_[j].count;
    // NaN: a mantissa bit is set besides the all-ones exponent; infinity: none is.
    if (element == c.count)  // every value finite: an FP8 checkpoint's scale is not
      return data_loss(names_[c.tensor] + " has a weight_scale that is not a finite positive number; the checkpoint "
                       "is corrupt (re-download it or write it again)");
    uint32_t bits = 0;
    std::memcpy(&bits, c.source_element(element), size);
    const uint32_t mantissa = c.src_dtype == DType::kF32    ? 0x007fffffu
                              : c.src_dtype == DType::kBF16 ? 0x007fu
                              : c.src_dtype == DType::kF8E4M3 ? 0x7u  // e4m3fn has NaN only
                                                              : 0x03ffu;
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
        flagged[i] = fill_chunk(c, c.dst, c.dst_scales);
        // Contiguous sources only: a column slice's pages (tensor parallelism) hold other ranks' columns too.
        if (copied_ && c.row_elements == 0) copied_(c.src, c.count * dtype_size(c.src_dtype));
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
