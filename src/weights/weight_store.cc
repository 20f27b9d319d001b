// WeightStore: opens model.safetensors or the shards of model.safetensors.index.json, validates every header
// at open, and hands out views into the memory maps.
#include "weights/weight_store.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "weights/json_file.h"
#include "weights/mapped_file.h"
#include "weights/safetensors.h"

namespace embedserve {

namespace fs = std::filesystem;

struct WeightStore::Impl {
  std::vector<std::unique_ptr<MappedFile>> files;
  std::unordered_map<std::string, TensorView> tensors;  // by stored name
  size_t total_bytes = 0;
};

namespace {

constexpr std::string_view kPrefix = "model.";

std::string shape_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// The LM head is a causal-LM's output projection; an embedding model never uses it, so it is neither
// validated for dtype nor kept.
bool ignored(const std::string& name) { return name.rfind("lm_head.", 0) == 0; }

StatusOr<DType> supported_dtype(const SafetensorsEntry& e, const std::string& file) {
  if (e.dtype == "BF16") return DType::kBF16;
  if (e.dtype == "F16") return DType::kF16;
  if (e.dtype == "F32") return DType::kF32;
  if (e.dtype == "F8_E4M3") return DType::kF8E4M3;  // FP8 checkpoints' weights, each with a weight_scale beside it
  return unimplemented(file + ": tensor " + e.name + " has dtype " + e.dtype +
                       ", which embedserve does not read (BF16, F16, F32, or F8_E4M3 with a weight_scale)");
}

// Maps one file and adds its tensors to the store.
Status add_file(WeightStore::Impl& impl, const fs::path& path) {
  const std::string file = path.filename().string();
  EMBEDSERVE_ASSIGN_OR_RETURN(auto mapped, MappedFile::open(path));
  EMBEDSERVE_ASSIGN_OR_RETURN(SafetensorsHeader header, parse_safetensors_header(mapped->bytes(), file));
  const uint8_t* data = mapped->bytes().data() + header.data_start;
  // The engine reads every weight at start-up; let the kernel read ahead instead of faulting page by page.
  mapped->will_need(header.data_start, mapped->bytes().size() - header.data_start);
  for (auto& e : header.tensors) {
    if (ignored(e.name)) continue;
    EMBEDSERVE_ASSIGN_OR_RETURN(DType dtype, supported_dtype(e, file));
    TensorView v;
    v.name = e.name;
    v.file = file;
    v.dtype = dtype;
    v.shape = std::move(e.shape);
    v.nbytes = static_cast<size_t>(e.end - e.begin);
    v.data = data + e.begin;
    auto [it, inserted] = impl.tensors.emplace(e.name, v);
    if (!inserted)
      return data_loss("tensor " + e.name + " appears in both " + it->second.file + " and " + file);
    impl.total_bytes += v.nbytes;
  }
  impl.files.push_back(std::move(mapped));
  return Status();
}

// A shard named by the index must be a plain file name beside it (no folders, no "..").
bool plain_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\\') == std::string::npos;
}

Status open_sharded(WeightStore::Impl& impl, const fs::path& dir, const fs::path& index_path) {
  const std::string index_name = index_path.filename().string();
  EMBEDSERVE_ASSIGN_OR_RETURN(nlohmann::json index, json_file::read(index_path));
  auto wm = index.is_object() ? index.find("weight_map") : index.end();
  if (wm == index.end() || !wm->is_object())
    return data_loss(index_path.string() + ": no \"weight_map\" object");
  std::map<std::string, std::string> weight_map;  // tensor → shard
  std::set<std::string> shards;                     // sorted, so files open in a stable order
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string() || !plain_file_name(shard.get<std::string>()))
      return data_loss(index_name + ": tensor " + name + " maps to " + json_file::brief(shard) +
                       ", which is not a file name beside the index");
    weight_map[name] = shard.get<std::string>();
    shards.insert(shard.get<std::string>());
  }
  if (shards.empty()) return data_loss(index_path.string() + ": weight_map lists no tensors");
  for (const auto& shard : shards) {
    const fs::path p = dir / shard;
    std::error_code ec;
    if (!fs::exists(p, ec))
      return not_found("shard " + shard + " listed in " + index_name + " is missing from " + dir.string());
    EMBEDSERVE_RETURN_IF_ERROR(add_file(impl, p));
  }
  for (const auto& [name, shard] : weight_map) {
    if (ignored(name)) continue;
    auto it = impl.tensors.find(name);
    if (it == impl.tensors.end())
      return data_loss(index_name + " lists tensor " + name + " in " + shard + ", but " + shard + " does not contain it");
    if (it->second.file != shard)
      return data_loss(index_name + " lists tensor " + name + " in " + shard + ", but it is in " + it->second.file);
  }
  return Status();
}

}  // namespace

WeightStore::WeightStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WeightStore::~WeightStore() = default;

StatusOr<std::unique_ptr<WeightStore>> WeightStore::open(const fs::path& model_dir) {
  auto impl = std::make_unique<Impl>();
  std::error_code ec;
  const fs::path single = model_dir / "model.safetensors";
  const fs::path index = model_dir / "model.safetensors.index.json";
  // transformers prefers the single file when both exist; so do we.
  if (fs::exists(single, ec)) {
    EMBEDSERVE_RETURN_IF_ERROR(add_file(*impl, single));
  } else if (fs::exists(index, ec)) {
    EMBEDSERVE_RETURN_IF_ERROR(open_sharded(*impl, model_dir, index));
  } else {
    const bool has_bin = fs::exists(model_dir / "pytorch_model.bin", ec) ||
                         fs::exists(model_dir / "pytorch_model.bin.index.json", ec);
    return not_found(model_dir.string() + " has neither model.safetensors nor model.safetensors.index.json" +
                     (has_bin ? " (pytorch_model.bin checkpoints are not supported: convert them to safetensors)" : ""));
  }
  if (impl->tensors.empty()) return data_loss(model_dir.string() + ": the checkpoint contains no tensors");
  return std::unique_ptr<WeightStore>(new WeightStore(std::move(impl)));
}

StatusOr<TensorView> WeightStore::get(std::string_view name) const {
  const std::string n(name);
  const TensorView* found = nullptr;
  // Qwen3ForCausalLM checkpoints say "model.layers.0...", Qwen3Model ones "layers.0...".
  std::string other = n.rfind(kPrefix, 0) == 0 ? n.substr(kPrefix.size()) : std::string(kPrefix) + n;
  if (auto it = impl_->tensors.find(n); it != impl_->tensors.end()) found = &it->second;
  else if (auto it2 = impl_->tensors.find(other); it2 != impl_->tensors.end()) found = &it2->second;
  if (found && found->dtype != DType::kF8E4M3) return *found;
  if (found) {
    // FP8: codes times weight_scale (vLLM's and compressed-tensors' name for it), per tensor or per output row.
    TensorView v = *found;
    auto it = impl_->tensors.find(v.name + "_scale");
    if (it == impl_->tensors.end())
      return data_loss("tensor " + v.name + " in " + v.file + " is F8_E4M3 but the checkpoint has no " + v.name +
                       "_scale; write FP8 checkpoints with their weight scales (tools/make_fp8_checkpoint.py)");
    const TensorView& sc = it->second;
    const int64_t rows = v.shape.empty() ? 1 : v.shape[0];
    const int64_t count = sc.numel();
    const bool per_row_shape = (sc.shape.size() == 1 || (sc.shape.size() == 2 && sc.shape[1] == 1)) && count == rows;
    if ((sc.dtype != DType::kF32 && sc.dtype != DType::kBF16) || (count != 1 && !per_row_shape))
      return unimplemented("tensor " + sc.name + " in " + sc.file + " has dtype " + dtype_name(sc.dtype) +
                           " and shape " + shape_string(sc.shape) + "; embedserve reads FP8 weight scales in f32 or "
                           "bf16, one per tensor or one per output channel ([" + std::to_string(rows) + "] or [" +
                           std::to_string(rows) + ", 1]), not block-wise ones");
    v.scale = sc.data;
    v.scale_dtype = sc.dtype;
    v.scale_count = count;
    return v;
  }
  return not_found("tensor " + n + " is not in the checkpoint (also tried " + other + "; it has " +
                   std::to_string(impl_->tensors.size()) + " tensors)");
}

StatusOr<TensorView> WeightStore::get(std::string_view name, std::span<const int64_t> expected_shape) const {
  EMBEDSERVE_ASSIGN_OR_RETURN(TensorView v, get(name));
  if (!std::equal(v.shape.begin(), v.shape.end(), expected_shape.begin(), expected_shape.end()))
    return invalid_argument("tensor " + v.name + " in " + v.file + " has shape " + shape_string(v.shape) +
                            ", expected " + shape_string(expected_shape));
  return v;
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(impl_->tensors.size());
  for (const auto& [name, v] : impl_->tensors) out.push_back(name);
  std::sort(out.begin(), out.end());
  return out;
}

size_t WeightStore::total_bytes() const { return impl_->total_bytes; }

void WeightStore::release(const void* p, size_t bytes) const {
  for (const auto& file : impl_->files)
    if (file->contains(p)) return file->release(file->offset_of(p), bytes);
}

}  // namespace embedserve
