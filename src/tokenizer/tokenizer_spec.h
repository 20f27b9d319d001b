// What the tokenizer needs from tokenizer.json (+ tokenizer_config.json), validated: every feature the
// file uses is either captured here or rejected at load with an error naming it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/status.h"

namespace embedserve::tokenizer {

struct AddedToken {
  int32_t id;
  std::string content;
  bool special;  // skipped by decode(skip_special_tokens=true)
};

struct TokenizerSpec {
  // model (BPE): tokens as raw bytes (the byte-level alphabet undone) -> id.
  std::unordered_map<std::string, int32_t> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // raw bytes, rank order
  bool ignore_merges = false;
  // Vocabulary tokens whose text is outside the byte-level alphabet (none in Qwen's): they can never
  // come out of BPE, but token_to_id and decode still know them. Token text -> id.
  std::unordered_map<std::string, int32_t> non_byte_tokens;
  std::vector<AddedToken> added_tokens;
  bool nfc = false;  // normalizer: NFC or none
  // TemplateProcessing "single": ids before and after the sequence (Qwen3-Embedding: after = [EOS]).
  std::vector<int32_t> prefix_ids;
  std::vector<int32_t> suffix_ids;
};

// `path`: tokenizer.json, or a directory holding it and optionally tokenizer_config.json.
StatusOr<TokenizerSpec> load_tokenizer_spec(const std::filesystem::path& path);

}  // namespace embedserve::tokenizer
