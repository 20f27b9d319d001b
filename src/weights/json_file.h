// Reading small JSON files (config.json and friends) with errors that name the file and the field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace embedserve::json_file {

// Reads and parses a whole JSON file. A missing file is not_found, unreadable is io_error, and text that
// is not JSON is data_loss; every message names the path.
StatusOr<nlohmann::json> read(const std::filesystem::path& path);

// Typed field access on an object. Absent (or JSON null) gives std::nullopt; a present field of the wrong
// type or out of the int range is invalid_argument "<file>: field <key> must be ..., got <value>".
StatusOr<std::optional<int64_t>> get_int(const nlohmann::json& obj, const std::string& key, const std::string& file);
StatusOr<std::optional<double>> get_number(const nlohmann::json& obj, const std::string& key, const std::string& file);
StatusOr<std::optional<bool>> get_bool(const nlohmann::json& obj, const std::string& key, const std::string& file);
StatusOr<std::optional<std::string>> get_string(const nlohmann::json& obj, const std::string& key,
                                                const std::string& file);

// The value shortened for an error message (long strings and objects are elided).
std::string brief(const nlohmann::json& value);

}  // namespace embedserve::json_file
