// read_tokenizer_json: tokenizer.json as a DOM, except model.vocab and model.merges (most of the file: ~151k entries
// each in Qwen3's), which a SAX reader streams into flat lists as it meets them. As a DOM they cost a std::map node
// per vocab entry and a json value per merge, iterated once and then freed: about a third of a tokenizer's load.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace embedserve::tokenizer {

struct TokenizerJson {
  // The file. Where model.vocab was an object and model.merges an array they are left empty here (of their type),
  // their entries in the lists below (the last of each, if the file gives one twice).
  nlohmann::json dom;
  std::vector<std::pair<std::string, int32_t>> vocab;        // token text (byte-level alphabet), id; file order
  std::vector<std::pair<std::string, std::string>> merges;   // left, right (byte-level alphabet); rank order
  // The first entry of either that is malformed ("model.vocab['x'] is not a valid id", "model.merges[3] is not a
  // pair of tokens"): reported where the model is checked, after the members before it, as a DOM walk would.
  Status entry_error;
};

// A model folder's file, whole. Not a regular file (a FIFO would wait for a writer forever, a device never end):
// invalid_argument; unreadable: not_found.
StatusOr<std::string> read_model_file(const std::filesystem::path& path);

// read_model_file's errors; not JSON: data_loss.
StatusOr<TokenizerJson> read_tokenizer_json(const std::filesystem::path& path);

}  // namespace embedserve::tokenizer
