// What sentence-transformers' files beside the checkpoint say: pooling, normalisation, named prompts.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "core/status.h"
#include "core/types.h"

namespace embedserve {

struct SentenceTransformersConfig {
  Pooling pooling = Pooling::kLastToken;   // 1_Pooling/config.json (default for Qwen3-Embedding: last token)
  bool normalize = true;                   // modules.json lists a Normalize module
  std::map<std::string, std::string> prompts;  // config_sentence_transformers.json "prompts"
  std::optional<std::string> default_prompt_name;
};

// Reads whichever of modules.json, 1_Pooling/config.json (the path modules.json names) and
// config_sentence_transformers.json exist in model_dir. Missing files give Qwen3-Embedding's defaults
// (last-token pooling, normalise); a present but malformed file is an error naming it.
StatusOr<SentenceTransformersConfig> load_sentence_transformers_config(const std::filesystem::path& model_dir);

}  // namespace embedserve
