// Tensor and Index: the typed, device-neutral views every op takes (memory belongs to a DeviceContext's device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/types.h"

namespace embedserve::ops {

// A row-major matrix view [rows, cols] of `dtype` elements, rows `stride` elements apart (stride ≥ cols), in
// the memory of the device whose context the op is given. Higher-rank shapes are written as matrices: a
// [n, heads, head_dim] tensor is [n, heads * head_dim], or [n * heads, head_dim] for per-head ops.
struct Tensor {
  void* data = nullptr;
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;
  // kF8E4M3 weights only: f32 [rows], row r's values are its codes times scales[r] (one scale per output
  // channel). Row views carry their rows' scales.
  const float* scales = nullptr;

  static Tensor matrix(void* data, DType dtype, int64_t rows, int64_t cols) { return {data, dtype, rows, cols, cols}; }
  template <typename T>
  T* as() const { return static_cast<T*>(data); }
  int64_t numel() const { return rows * cols; }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  bool dense() const { return stride == cols; }
  // The first `n` rows (the rows a batch uses of a workspace sized for the largest batch).
  Tensor first_rows(int64_t n) const { return {data, dtype, n, cols, stride, scales}; }
  // Rows [begin, begin + n), e.g. one projection's rows of a stacked weight.
  Tensor rows_range(int64_t begin, int64_t n) const {
    return {static_cast<char*>(data) + begin * stride * static_cast<int64_t>(dtype_size(dtype)), dtype, n, cols, stride,
            scales ? scales + begin : nullptr};
  }
  // Columns [begin, begin + n) of every row, e.g. one half of a fused gate|up projection.
  Tensor columns(int64_t begin, int64_t n) const {
    return {static_cast<char*>(data) + begin * static_cast<int64_t>(dtype_size(dtype)), dtype, rows, n, stride, scales};
  }
  // The same dense memory seen as [numel / cols, cols]: [n, heads * hd] as [n * heads, hd].
  Tensor reshaped(int64_t new_cols) const { return {data, dtype, numel() / new_cols, new_cols, new_cols}; }
};

// An int32 array of one batch (token ids, positions, sequence offsets, pooled rows) as the host wrote it and
// where the device reads it: the same memory on the CPU, a copy in device memory on a GPU.
struct Index {
  std::span<const int32_t> host;
  const int32_t* device = nullptr;
  int64_t size() const { return static_cast<int64_t>(host.size()); }
};

// Rows of a padding-free batch grouped into sequences: sequence s owns rows [offsets[s], offsets[s+1]), and
// each row sits at positions[r] within its sequence. Positions restart at 0 in every sequence; a sequence's
// rows carry ascending positions (all of its tokens, or just its last under last-token pooling).
struct SequenceRows {
  Index offsets;    // int32 [n_seqs + 1]
  Index positions;  // int32 [n_rows]
  int64_t num_sequences() const { return offsets.size() - 1; }
  int64_t num_rows() const { return positions.size(); }
};

}  // namespace embedserve::ops
