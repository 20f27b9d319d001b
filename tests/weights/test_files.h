// Test helpers: temporary directories and small safetensors/JSON files written by hand.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "weights/hub_environment.h"

namespace embedserve::testing {

// A fresh directory under the system temp dir, removed with everything in it when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Sets environment variables for one test and restores them when it ends.
class EnvGuard {
 public:
  EnvGuard() = default;
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  void set(const char* name, const char* value) {  // nullptr unsets
    if (!saved_.count(name)) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~EnvGuard() {
    for (auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

// The hub variables of this process, as cli/ reads them for resolve_model_path (tests set them with EnvGuard).
inline HubEnvironment hub_environment_from_process() {
  HubEnvironment env;
  for (const std::string& name : HubEnvironment::names())
    if (const char* v = std::getenv(name.c_str()); v && *v) env.values[name] = v;
  return env;
}

void write_file(const std::filesystem::path& path, const std::string& contents);
std::string read_file(const std::filesystem::path& path);

struct FakeTensor {
  std::string name;
  std::string dtype;            // "BF16", "F16", "F32", ...
  std::vector<int64_t> shape;
  size_t element_size = 0;      // 0: derived from dtype for BF16/F16/F32
};

// Builds the bytes of a valid safetensors file holding `tensors` laid out in order; element i of each
// tensor's data is the byte (i + k) & 0xff for the k-th tensor, so views can be checked for the right data.
std::string safetensors_bytes(const std::vector<FakeTensor>& tensors);
// The raw file for an arbitrary header text and data (for corrupt-file tests).
std::string safetensors_raw(const std::string& header_json, const std::string& data);

}  // namespace embedserve::testing
