// Downloading the files of a Qwen3-Embedding repository from a Hugging Face hub (or a mirror speaking its
// HTTP API) into the cache, resumably and with sha256 checks.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "core/status.h"
#include "weights/http_client.h"
#include "weights/model_source.h"

namespace embedserve {

struct HubDownloadRequest {
  std::string repo_id;                // "org/name"
  std::string revision = "main";      // branch, tag or commit
  std::filesystem::path cache_dir;    // the hub cache (hf_cache::cache_dir())
  std::string endpoint = "https://huggingface.co";  // no trailing slash
  std::optional<std::string> token;   // sent as "Authorization: Bearer <token>" to the endpoint only
  std::function<void(const DownloadProgress&)> on_progress;
};

// Asks the hub which commit `revision` is and which files it has
// (GET {endpoint}/api/models/{repo}/revision/{revision}?blobs=true), then fetches only what embedserve
// reads — config.json, tokenizer.json, tokenizer_config.json, model.safetensors or the index and its
// shards, modules.json, config_sentence_transformers.json, the Pooling folder's config.json — from
// {endpoint}/{repo}/resolve/{commit}/{file}. Files already in blobs/ are linked, not fetched again; a
// partial <blob>.incomplete is resumed with an HTTP Range request; LFS files are checked against the
// hub's sha256. Returns the snapshot directory.
StatusOr<std::filesystem::path> download_snapshot(HttpClient& http, const HubDownloadRequest& request);

}  // namespace embedserve
