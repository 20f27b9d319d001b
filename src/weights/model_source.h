// Resolving --model-path: a local directory, or a hub id found in the Hugging Face cache or downloaded.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "core/status.h"
#include "weights/hub_environment.h"

namespace embedserve {

struct DownloadProgress {
  std::string file;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;  // 0 when unknown
};

struct ModelSourceOptions {
  std::string revision = "main";
  HubEnvironment environment;  // the HF_* variables (and EMBEDSERVE_LIBCURL), as cli/ read them
  // Called from the downloading thread; the CLI draws a progress bar from it.
  std::function<void(const DownloadProgress&)> on_progress;
};

// `path_or_id` is a directory holding config.json, or a hub id "org/name". Hub ids are looked up in the
// Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub; the
// models--org--name/snapshots/<rev> layout, so a model another tool downloaded is reused), and otherwise
// downloaded from HF_ENDPOINT (default https://huggingface.co) with HF_TOKEN, unless HF_HUB_OFFLINE=1.
// Returns the directory to load from.
StatusOr<std::filesystem::path> resolve_model_path(const std::string& path_or_id, const ModelSourceOptions& options);

}  // namespace embedserve
