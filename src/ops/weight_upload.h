// WeightUploader: a model's weights from the mapped checkpoint into a context's memory, many tensors at once,
// each element checked finite on the way.
#pragma once

#include <cstddef>
#include <functional>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "ops/context.h"
#include "ops/memory.h"

namespace embedserve::ops {

// One contiguous run of a weight's elements: `count` elements of `src` (stored as src_dtype, possibly unaligned)
// become `count` elements of dst_dtype at `dst`. Weights are cut into chunks of at most kChunkElements
// so that many threads share even a single large tensor.
struct UploadChunk {
  const void* src = nullptr;
  DType src_dtype = DType::kF32;
  void* dst = nullptr;
  DType dst_dtype = DType::kF32;
  size_t count = 0;
  size_t tensor = 0;  // index into the uploader's names, for errors
  // A strided source (a column slice): rows of `row_elements` elements, `src_stride` elements apart, landing
  // dense at dst. 0: the count elements are contiguous.
  size_t row_elements = 0;
  size_t src_stride = 0;
  // Where element i (0 ≤ i < count) of the chunk lies in the source.
  const void* source_element(size_t i) const {
    const size_t at = row_elements ? (i / row_elements) * src_stride + i % row_elements : i;
    return static_cast<const char*>(src) + at * dtype_size(src_dtype);
  }
  // kF8E4M3 destinations: the chunk is whole rows of `cols` elements, each row's scale written to dst_scales.
  int64_t cols = 0;
  float* dst_scales = nullptr;
  // kF8E4M3 sources (an FP8 checkpoint): the stored scales of these rows, one per row or one for all.
  const void* src_scales = nullptr;
  DType src_scale_dtype = DType::kF32;
  bool src_scale_per_row = false;
  int64_t rows() const { return cols > 0 ? static_cast<int64_t>(count) / cols : 0; }
};

// Where a [rows, cols] e4m3 weight's f32 scales sit in its memory: after the codes, 16-byte aligned.
inline size_t fp8_scales_offset(int64_t rows, int64_t cols) { return (static_cast<size_t>(rows * cols) + 15) & ~size_t{15}; }

// Copies a chunk's elements to `dst` (its own dst, or a staging buffer) as convert_checked does, row by row for a
// strided source. Returns whether any source element is NaN or infinite.
bool convert_chunk(const UploadChunk& chunk, void* dst);

// Start-up time is mostly this copy (a 4B checkpoint is 8 GB): on CUDA, worker threads each fill pinned staging
// buffers from the page cache and send them on a stream of their own while they fill the next, so reading, widening
// and the host-to-device transfer overlap; on the CPU the workers widen into the weights directly. A NaN or Inf in
// any weight fails the load with the tensor and file named: the scan rides on the copy, which reads every byte anyway.
class WeightUploader {
 public:
  // 4 MB of bf16 per chunk. Each CUDA worker pins a staging buffer of one chunk, and the driver pins them one
  // after another: with 16 MB buffers the eighth worker started 66 ms into an upload, and the 4B's took 0.58 s
  // where 4 MB ones take 0.40 s (H200, 2026-12-02: docs/PERFORMANCE.md).
  static constexpr size_t kChunkElements = size_t{2} << 20;

  explicit WeightUploader(const DeviceContext& ctx) : ctx_(ctx) {}

  // Allocates the weight now (so a lack of memory is reported at once, naming it); its values arrive in finish().
  // A matrix (more than one row) takes the context's weight_dtype(), a vector (norm scales, read by elementwise
  // ops) its dtype(). `parts` (same cols) are stacked by rows: how fused projections (gate|up) become one GEMM; `name` may list
  // them as "a + b" so an error names the part at fault. `where` names the source (file) in errors.
  StatusOr<Weight> add(std::span<const HostMatrix> parts, const std::string& name, const std::string& where = "");
  // The embedding table: the CPU keeps a copy in the stored dtype (rows widened exactly at lookup), a GPU a copy
  // in the context's dtype. Either way nothing reads the checkpoint's mapping after finish(), so the engine drops
  // it: a checkpoint file truncated or replaced while serving cannot fault (SIGBUS) the server.
  StatusOr<Weight> add_table(const HostMatrix& table, const std::string& name, const std::string& where = "");
  // Bytes of ctx's memory that add() (table false) or add_table() (true) will hold for a [rows, cols] weight stored
  // as `stored`, so a model can say what it needs before it allocates anything. Kept beside the two it mirrors.
  static size_t held_bytes(const DeviceContext& ctx, int64_t rows, int64_t cols, DType stored, bool table);
  // Copies everything added, with up to `threads` workers (0: as many as the machine has, at most 16).
  Status finish(int threads = 0);
  // Called with each host source range [p, p + bytes) once the CPU has copied it, from the copying threads:
  // the loader drops the checkpoint mapping's pages there (WeightStore::release), so the process never holds
  // the file and its copy at once.
  void on_copied(std::function<void(const void* p, size_t bytes)> copied) { copied_ = std::move(copied); }

 private:
  void plan(const HostMatrix& part, void* dst, DType dst_dtype, size_t tensor, float* dst_scales);
  StatusOr<Weight> add_as(std::span<const HostMatrix> parts, DType dtype, const std::string& name, const std::string& where);
  Status first_nonfinite(const std::vector<uint8_t>& flagged) const;

  const DeviceContext& ctx_;
  std::vector<UploadChunk> chunks_;
  std::vector<std::string> names_;  // "tensor X in FILE"
  std::function<void(const void*, size_t)> copied_;
};

// Whether any of the `count` elements at `src` (stored as dtype) is NaN or infinite.
bool any_nonfinite(const void* src, DType dtype, size_t count);
// Writes one chunk's values into `dst` (and, for a kF8E4M3 destination, its rows' scales into `dst_scales`):
// convert_checked for plain dtypes; per-row quantisation to e4m3, or an FP8 checkpoint's codes and scales as
// stored. Returns whether any source value (or stored scale) is NaN or infinite.
bool fill_chunk(const UploadChunk& chunk, void* dst, float* dst_scales);
// Copies `count` elements stored as src_dtype into dst as dst_dtype (f32 or bf16): as stored when the two agree,
// else widened exactly and, for bf16, rounded to nearest even once. Returns whether any source element is
// NaN or infinite.
bool convert_checked(const void* src, DType src_dtype, void* dst, DType dst_dtype, size_t count);

}  // namespace embedserve::ops
