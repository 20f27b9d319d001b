// resolve_model_path: a local model directory, a hub id found in the Hugging Face cache, or a download.
#include "weights/model_source.h"

#include <cstdlib>
#include <fstream>

#include "weights/hf_cache.h"
#include "weights/http_client.h"
#include "weights/hub_download.h"

namespace embedserve {

namespace fs = std::filesystem;

namespace {

// HF_TOKEN, else the older HUGGING_FACE_HUB_TOKEN, else the file `huggingface-cli login` writes
// (HF_TOKEN_PATH, else HF_HOME/token, else ~/.cache/huggingface/token).
std::optional<std::string> hub_token(const HubEnvironment& environment) {
  const auto env = [&](const char* name) { return environment.get(name); };
  if (auto t = env("HF_TOKEN")) return t;
  if (auto t = env("HUGGING_FACE_HUB_TOKEN")) return t;
  fs::path file;
  if (auto p = env("HF_TOKEN_PATH")) file = *p;
  else if (auto h = env("HF_HOME")) file = fs::path(*h) / "token";
  else if (auto x = env("XDG_CACHE_HOME")) file = fs::path(*x) / "huggingface" / "token";
  else if (auto home = env("HOME")) file = fs::path(*home) / ".cache" / "huggingface" / "token";
  std::ifstream in(file);
  std::string token;
  if (!in || !std::getline(in, token)) return std::nullopt;
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.empty()) return std::nullopt;
  return token;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

StatusOr<fs::path> resolve_model_path(const std::string& path_or_id, const ModelSourceOptions& options) {
  if (path_or_id.empty()) return invalid_argument("--model-path is empty: give a model directory or a hub id such as Qwen/Qwen3-Embedding-0.6B");
  std::error_code ec;
  const fs::path local(path_or_id);
  if (fs::is_directory(local, ec)) {
    if (!fs::exists(local / "config.json", ec))
      return not_found(local.string() + " has no config.json: --model-path takes a Hugging Face model directory or hub id");
    return local;
  }
  if (fs::exists(local, ec))
    return invalid_argument(path_or_id + " is a file: --model-path takes a model directory or a hub id");
  if (!hf_cache::is_repo_id(path_or_id))
    return not_found("no directory " + path_or_id + ", and it is not a hub id of the form org/name");
  if (!hf_cache::is_valid_revision(options.revision))
    return invalid_argument("revision \"" + options.revision + "\" is not a valid branch, tag or commit");

  const HubEnvironment& env = options.environment;
  EMBEDSERVE_ASSIGN_OR_RETURN(fs::path cache, hf_cache::cache_dir(env));
  const auto snapshot = hf_cache::find_snapshot(cache, path_or_id, options.revision);
  std::vector<std::string> missing;
  if (snapshot) {
    missing = hf_cache::missing_files(*snapshot);
    // A complete snapshot is served without asking the hub: start-up works offline and is instant.
    if (missing.empty()) return *snapshot;
  }
  if (hf_cache::offline_mode(env)) {
    std::string what = snapshot ? "the cached snapshot " + snapshot->string() + " lacks " + join(missing)
                                : path_or_id + " (revision " + options.revision + ") is not in the Hugging Face cache at " +
                                      cache.string();
    return not_found(what + ", and HF_HUB_OFFLINE is set, so it cannot be downloaded: unset HF_HUB_OFFLINE, or " +
                     "download it first (e.g. hf download " + path_or_id + ")");
  }

  EMBEDSERVE_ASSIGN_OR_RETURN(auto http, make_curl_http_client("downloading " + path_or_id,
                                                               env.get("EMBEDSERVE_LIBCURL").value_or("")));
  HubDownloadRequest req;
  req.repo_id = path_or_id;
  req.revision = options.revision;
  req.cache_dir = cache;
  req.endpoint = env.get("HF_ENDPOINT").value_or("https://huggingface.co");
  while (!req.endpoint.empty() && req.endpoint.back() == '/') req.endpoint.pop_back();
  if (req.endpoint.rfind("http://", 0) != 0 && req.endpoint.rfind("https://", 0) != 0)
    return invalid_argument("HF_ENDPOINT \"" + req.endpoint + "\" must be an http:// or https:// URL");
  req.token = hub_token(env);
  req.on_progress = options.on_progress;
  return download_snapshot(*http, req);
}

}  // namespace embedserve
