// The Hugging Face hub cache on disk: where it is, how repositories and snapshots are named in it.
#include "weights/hf_cache.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>

#include "weights/json_file.h"

namespace embedserve::hf_cache {

namespace fs = std::filesystem;

namespace {

bool valid_name_part(const std::string& s) {
  if (s.empty() || s.size() > 96) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  if (s.front() == '-' || s.front() == '.' || s.back() == '-' || s.back() == '.') return false;
  return s.find("--") == std::string::npos && s.find("..") == std::string::npos;
}
}  // namespace

StatusOr<fs::path> cache_dir(const HubEnvironment& environment) {
  const auto env = [&](const char* name) { return environment.get(name); };
  if (auto v = env("HF_HUB_CACHE")) return fs::path(*v);
  if (auto v = env("HUGGINGFACE_HUB_CACHE")) return fs::path(*v);
  if (auto v = env("HF_HOME")) return fs::path(*v) / "hub";
  if (auto v = env("XDG_CACHE_HOME")) return fs::path(*v) / "huggingface" / "hub";
  if (auto v = env("HOME")) return fs::path(*v) / ".cache" / "huggingface" / "hub";
  return invalid_argument("cannot locate the Hugging Face cache: set HF_HUB_CACHE or HF_HOME (HOME is unset)");
}

bool is_repo_id(const std::string& s) {
  auto slash = s.find('/');
  if (slash == std::string::npos || s.find('/', slash + 1) != std::string::npos) return false;
  return valid_name_part(s.substr(0, slash)) && valid_name_part(s.substr(slash + 1));
}

bool is_valid_revision(const std::string& s) {
  if (s.empty() || s.size() > 256 || s.front() == '/' || s.back() == '/' || s.find("//") != std::string::npos)
    return false;
  for (const auto& part : fs::path(s)) {
    if (part == ".." || part == "." || part.empty()) return false;
  }
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return c > ' ' && c != '\\' && c < 0x7f; });
}

bool is_commit_hash(const std::string& s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string repo_folder_name(const std::string& repo_id) {
  std::string out = "models--";
  for (char c : repo_id) {
    if (c == '/') out += "--";
    else out += c;
  }
  return out;
}

std::optional<fs::path> find_snapshot(const fs::path& cache, const std::string& repo_id, const std::string& revision) {
  const fs::path repo = cache / repo_folder_name(repo_id);
  std::string commit = revision;
  std::error_code ec;
  if (!is_commit_hash(revision)) {
    std::ifstream ref(repo / "refs" / revision);
    if (!ref || !std::getline(ref, commit)) return std::nullopt;
    // huggingface_hub writes the bare hash without a newline; tolerate one written by hand.
    while (!commit.empty() && std::isspace(static_cast<unsigned char>(commit.back()))) commit.pop_back();
    if (!is_commit_hash(commit)) return std::nullopt;
  }
  fs::path snapshot = repo / "snapshots" / commit;
  if (!fs::is_directory(snapshot, ec)) return std::nullopt;
  return snapshot;
}

std::vector<std::string> missing_files(const fs::path& snapshot) {
  std::vector<std::string> missing;
  std::error_code ec;
  // exists() follows symlinks, so a snapshot link whose blob was deleted counts as missing.
  auto need = [&](const std::string& f) {
    if (!fs::exists(snapshot / f, ec)) missing.push_back(f);
  };
  need("config.json");
  need("tokenizer.json");
  if (!fs::exists(snapshot / "model.safetensors", ec)) {
    const fs::path index = snapshot / "model.safetensors.index.json";
    auto j = json_file::read(index);
    if (!j.ok()) {
      missing.push_back("model.safetensors");
    } else {
      std::set<std::string> shards;
      if (j->is_object() && j->contains("weight_map") && (*j)["weight_map"].is_object()) {
        for (const auto& [name, shard] : (*j)["weight_map"].items()) {
          if (shard.is_string()) shards.insert(shard.get<std::string>());
        }
      }
      for (const auto& s : shards) need(s);
    }
  }
  if (auto modules = json_file::read(snapshot / "modules.json"); modules.ok() && modules->is_array()) {
    for (const auto& m : *modules) {
      if (!m.is_object() || !m.contains("type") || !m["type"].is_string()) continue;
      const std::string type = m["type"].get<std::string>();
      if (type.size() >= 8 && type.compare(type.size() - 8, 8, ".Pooling") == 0 && m.contains("path") &&
          m["path"].is_string())
        need(m["path"].get<std::string>() + "/config.json");
    }
  }
  return missing;
}

bool offline_mode(const HubEnvironment& environment) {
  auto v = environment.get("HF_HUB_OFFLINE");
  if (!v) return false;
  std::string s = *v;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s == "1" || s == "ON" || s == "YES" || s == "TRUE";
}

}  // namespace embedserve::hf_cache
