// WeightStore: the tensors of a safetensors checkpoint (one file or sharded), memory-mapped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace embedserve {

// A tensor inside a mapped file. Valid while its WeightStore lives.
struct TensorView {
  std::string name;              // as stored in the file
  std::string file;              // the file it lives in (for error messages)
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;    // may be unaligned for its dtype: read with memcpy or convert
  size_t nbytes = 0;
  // An F8_E4M3 weight's `<name>_scale` (f32 or bf16), found by get(): one value for the tensor (scale_count 1) or
  // one per row, i.e. per output channel (scale_count shape[0]); values are its codes times the scale.
  const void* scale = nullptr;
  DType scale_dtype = DType::kF32;
  int64_t scale_count = 0;
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

class WeightStore {
 public:
  // Opens model_dir/model.safetensors, or every shard listed in model_dir/model.safetensors.index.json.
  // Headers are parsed and checked (offsets inside the file, sizes matching dtype × shape, no overlap)
  // at open, and every tensor is scanned for NaN and Inf; a truncated or corrupt file is a data_loss naming
  // the file and tensor.
  static StatusOr<std::unique_ptr<WeightStore>> open(const std::filesystem::path& model_dir);
  ~WeightStore();
  WeightStore(const WeightStore&) = delete;
  WeightStore& operator=(const WeightStore&) = delete;

  // Looks `name` up as given, then with the "model." prefix added or removed
  // (Qwen3Model checkpoints have "layers.0...", Qwen3ForCausalLM ones "model.layers.0..."). An F8_E4M3 tensor
  // comes with its weight_scale; one missing, or of another shape than per tensor or per row, is an error naming it.
  StatusOr<TensorView> get(std::string_view name) const;
  // As get(), and checks the shape: "tensor layers.3.mlp.up_proj.weight in model-00002-of-00002.safetensors
  // has shape [80, 32], expected [96, 32]".
  StatusOr<TensorView> get(std::string_view name, std::span<const int64_t> expected_shape) const;
  std::vector<std::string> names() const;
  size_t total_bytes() const;  // bytes of tensor data across all files
  // Drops the mapped pages of [p, p + bytes) (tensor data a get() returned) from the process's resident set once
  // they are copied: the page cache keeps them. Without it a loader copying every tensor holds the file's pages
  // beside its copies until the mapping goes: twice the weights at the peak (the 4B on the CPU: 15 GiB, not 8).
  void release(const void* p, size_t bytes) const;

  struct Impl;

 private:
  explicit WeightStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedserve
