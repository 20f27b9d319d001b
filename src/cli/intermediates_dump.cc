// The intermediates dump: a sink on the model that copies each named tensor to the host and writes it as .npy.
#include "cli/intermediates_dump.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/model_engine.h"
#include "ops/convert.h"
#include "ops/memory.h"

namespace embedserve::cli {
namespace {

// NumPy's .npy format, version 1.0: magic, header length, a Python dict literal padded to 64 bytes, the data.
Status write_npy(const std::filesystem::path& path, int64_t rows, int64_t cols, const std::vector<float>& data) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  header.append(64 - (10 + header.size() + 1) % 64, ' ');
  header += '\n';
  std::ofstream f(path, std::ios::binary);
  const uint16_t len = static_cast<uint16_t>(header.size());
  f.write("\x93NUMPY\x01\x00", 8);
  f.write(reinterpret_cast<const char*>(&len), 2);
  f << header;
  f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(float)));
  if (!f) return io_error("cannot write " + path.string());
  return Status();
}

std::string layer_tag(int layer, std::string_view name) {
  if (layer >= 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02d", layer);
    return buf;
  }
  return name == "inp_embd" ? "in" : "out";
}

}  // namespace

Status dump_intermediates(Engine& engine, const std::vector<std::string>& texts,
                          const std::vector<std::vector<int32_t>>& token_ids, const std::string& model, int layers,
                          const std::filesystem::path& dir) {
  auto* model_engine = dynamic_cast<ModelEngine*>(&engine);
  if (!model_engine) return invalid_argument("--dump-intermediates runs on one device: use --tp 1");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return io_error("cannot create " + dir.string() + ": " + ec.message());
  const ops::DeviceContext& ctx = model_engine->context();
  const size_t hidden = static_cast<size_t>(engine.info().hidden_size);
  Status failed;
  std::filesystem::path text_dir;
  model_engine->model().set_intermediate_sink([&](std::string_view name, int layer, const ops::Tensor& t) {
    if (!failed.ok()) return;
    // The span from the first row's start to the last row's end (q, k and v are column views of one matrix),
    // then each row's columns.
    const size_t elem = dtype_size(t.dtype), row_bytes = static_cast<size_t>(t.cols) * elem;
    const size_t stride_bytes = static_cast<size_t>(t.stride) * elem;
    std::vector<char> raw(t.rows > 0 ? static_cast<size_t>(t.rows - 1) * stride_bytes + row_bytes : 0);
    failed = ops::copy_bytes_to_host(ctx, t.data, raw.data(), raw.size());
    if (!failed.ok()) return;
    std::vector<float> values(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < t.rows; ++r)
      ops::convert_to_f32(raw.data() + static_cast<size_t>(r) * stride_bytes, t.dtype,
                          values.data() + static_cast<size_t>(r * t.cols), static_cast<size_t>(t.cols));
    failed = write_npy(text_dir / (layer_tag(layer, name) + "-" + std::string(name) + ".npy"), t.rows, t.cols, values);
  });
  Status st;
  for (size_t i = 0; i < token_ids.size() && st.ok(); ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "text-%05zu", i);
    text_dir = dir / name;
    std::filesystem::create_directories(text_dir, ec);
    SequenceBatch batch;
    batch.add(token_ids[i]);
    std::vector<float> out(hidden);
    st = engine.embed(batch, out);
    if (st.ok()) st = failed;
  }
  model_engine->model().set_intermediate_sink({});
  EMBEDSERVE_RETURN_IF_ERROR(st);

  const EngineInfo& info = engine.info();
  nlohmann::json manifest = {{"model", model},
                             {"texts", texts},
                             {"token_ids", token_ids},
                             {"pooling", pooling_name(info.pooling)},
                             {"dtype", precision_name(info.precision)},
                             {"layers", layers}};
  std::ofstream f(dir / "manifest.json");
  f << manifest.dump(1) << "\n";
  if (!f) return io_error("cannot write " + (dir / "manifest.json").string());
  return Status();
}

}  // namespace embedserve::cli
