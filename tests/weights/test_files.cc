// Test helpers: temporary directories and small safetensors/JSON files written by hand.
#include "test_files.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace embedserve::testing {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "embedserve-weights-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string safetensors_raw(const std::string& header_json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header_json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header_json + data;
}

std::string safetensors_bytes(const std::vector<FakeTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = {{"format", "pt"}};
  std::string data;
  for (size_t k = 0; k < tensors.size(); ++k) {
    const auto& t = tensors[k];
    size_t es = t.element_size ? t.element_size : (t.dtype == "F32" ? 4 : 2);
    size_t numel = 1;
    for (auto d : t.shape) numel *= static_cast<size_t>(d);
    size_t begin = data.size();
    // A counting pattern, with bit 6 of each element's top byte off so its exponent is never all ones:
    // NaN and Inf are refused at load, in every float dtype.
    for (size_t i = 0; i < numel * es; ++i)
      data.push_back(static_cast<char>(((i + k) & 0xff) & (i % es == es - 1 ? 0xbf : 0xff)));
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data.size()}}};
  }
  return safetensors_raw(header.dump(), data);
}

}  // namespace embedserve::testing
