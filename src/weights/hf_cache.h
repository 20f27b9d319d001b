// The Hugging Face hub cache on disk, in huggingface_hub's own layout, so models downloaded by Python tools
// are reused and ours are reused by them:
//   <cache>/models--<org>--<name>/refs/<revision>           the commit a branch or tag pointed to
//   <cache>/models--<org>--<name>/snapshots/<commit>/<file>  symlinks to ../../blobs/<etag>
//   <cache>/models--<org>--<name>/blobs/<etag>               file contents (sha256 for LFS, git oid otherwise)
//   <cache>/models--<org>--<name>/.no_exist/<commit>/<file>  markers for files the repository lacks
//   <cache>/.locks/models--<org>--<name>/<etag>.lock         flock()ed while a blob is being written
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "weights/hub_environment.h"

namespace embedserve::hf_cache {

// HF_HUB_CACHE, else HUGGINGFACE_HUB_CACHE (older name), else HF_HOME/hub, else
// XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub — huggingface_hub's order.
StatusOr<std::filesystem::path> cache_dir(const HubEnvironment& environment);

// "org/name" with the characters and rules the hub allows (no "--" or "..", at most 96 per part).
bool is_repo_id(const std::string& s);
// A revision usable as a path under refs/ and in URLs: a branch, tag or commit, no "..", no leading "/".
bool is_valid_revision(const std::string& s);
bool is_commit_hash(const std::string& s);  // 40 lowercase hex digits

// models--org--name
std::string repo_folder_name(const std::string& repo_id);

// The snapshot directory for `revision` when the cache knows it: a commit hash names the snapshot itself,
// a branch or tag is looked up in refs/. The directory may be incomplete (see missing_files).
std::optional<std::filesystem::path> find_snapshot(const std::filesystem::path& cache, const std::string& repo_id,
                                                   const std::string& revision);

// The files embedserve needs that `snapshot` lacks: config.json, tokenizer.json, the weights
// (model.safetensors, or the index and every shard it names) and, when modules.json names a Pooling
// folder, its config.json. Empty when the snapshot can be served as it is.
std::vector<std::string> missing_files(const std::filesystem::path& snapshot);

// True when HF_HUB_OFFLINE is 1/ON/YES/TRUE (any case), as huggingface_hub reads it.
bool offline_mode(const HubEnvironment& environment);

}  // namespace embedserve::hf_cache
