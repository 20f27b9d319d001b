// HubEnvironment: the environment variables the hub code honours, read once by cli/ and passed down, so nothing
// below cli/ reads the process environment.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace embedserve {

struct HubEnvironment {
  std::map<std::string, std::string> values;  // name → value; unset and empty variables are absent

  std::optional<std::string> get(const std::string& name) const {
    auto it = values.find(name);
    if (it == values.end() || it->second.empty()) return std::nullopt;
    return it->second;
  }

  // Every variable honoured (huggingface_hub's meanings): where the cache is (HF_HUB_CACHE,
  // HUGGINGFACE_HUB_CACHE, HF_HOME, XDG_CACHE_HOME, HOME), whether to stay offline (HF_HUB_OFFLINE), where the
  // hub is (HF_ENDPOINT), the token (HF_TOKEN, HUGGING_FACE_HUB_TOKEN, HF_TOKEN_PATH), and which libcurl to load
  // (EMBEDSERVE_LIBCURL).
  static const std::vector<std::string>& names() {
    static const std::vector<std::string> all = {
        "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME", "HOME", "HF_HUB_OFFLINE",
        "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "EMBEDSERVE_LIBCURL"};
    return all;
  }
};

}  // namespace embedserve
