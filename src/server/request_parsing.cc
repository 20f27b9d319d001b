// Request parsing with nlohmann::json; every exception stays inside this file.
#include "server/request_parsing.h"

#include <limits>
#include <string>
#include <string_view>
#include <nlohmann/json.hpp>

#include "core/utf8.h"

namespace embedserve {
namespace {

using nlohmann::json;

// nlohmann's what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error while
// parsing value - invalid literal; last read: 'x'". Users get only the reason: the bracketed tag is the library's,
// the line and column of a one-line body say less than the byte offset, and "last read" may hold the very bytes
// that were not UTF-8.
std::string parse_error_reason(std::string_view what) {
  if (size_t tag_end = what.find("] "); what.starts_with("[json.exception.") && tag_end != std::string_view::npos)
    what.remove_prefix(tag_end + 2);
  if (what.starts_with("parse error"))
    if (size_t colon = what.find(": "); colon != std::string_view::npos) what.remove_prefix(colon + 2);
  if (size_t last = what.find("; last read:"); last != std::string_view::npos) what = what.substr(0, last);
  return std::string(what);
}

std::optional<ApiError> parse_object(std::string_view body, json& out) {
  try {
    out = json::parse(body);
  } catch (const json::parse_error& e) {
    // Covers malformed JSON, raw bytes that are not UTF-8 and lone \ud800-style surrogate escapes.
    return bad_request("the request body is not valid JSON: " + parse_error_reason(e.what()) + " at byte " +
                           std::to_string(e.byte),
                       "", "invalid_json");
  } catch (const json::exception& e) {
    return bad_request("the request body is not valid JSON: " + parse_error_reason(e.what()), "", "invalid_json");
  }
  if (!out.is_object()) return bad_request("the body must be a JSON object", "", "invalid_json");
  return std::nullopt;
}

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  return v.type_name();
}

// Reads `key` when present and not null; a wrong type is a 400 naming the field.
std::optional<ApiError> get_string(const json& o, const char* key, std::optional<std::string>& out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return bad_request(std::string("'") + key + "' must be a string, got " + type_name(*it), key, "invalid_type");
  out = it->get<std::string>();
  return std::nullopt;
}

std::optional<ApiError> get_bool(const json& o, const char* key, bool& out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return bad_request(std::string("'") + key + "' must be true or false, got " + type_name(*it), key, "invalid_type");
  out = it->get<bool>();
  return std::nullopt;
}

// Reads an integer in [min, max] (min ≥ 0 < max); the message quotes the value as sent, whatever its size.
std::optional<ApiError> get_int(const json& o, const char* key, int64_t min, int64_t max, std::optional<int64_t>& out) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer())
    return bad_request(std::string("'") + key + "' must be an integer, got " + type_name(*it), key, "invalid_type");
  const bool in_range = it->is_number_unsigned()
                            ? it->get<uint64_t>() >= static_cast<uint64_t>(min) && it->get<uint64_t>() <= static_cast<uint64_t>(max)
                            : it->get<int64_t>() >= min && it->get<int64_t>() <= max;
  if (!in_range)
    return bad_request(std::string("'") + key + "' must be between " + std::to_string(min) + " and " +
                           std::to_string(max) + ", got " + it->dump(), key);
  out = it->get<int64_t>();
  return std::nullopt;
}

std::optional<ApiError> text_input(const json& v, const std::string& where, const char* param, EmbedInput& out) {
  out.is_ids = false;
  out.text = v.get<std::string>();
  if (out.text.empty()) return bad_request(where + " is an empty string; every input needs some text", param);
  if (Status st = validate_utf8(out.text); !st.ok()) return bad_request(where + ": " + st.message(), param);
  return std::nullopt;
}

std::optional<ApiError> id_input(const json& arr, const std::string& where, const char* param, EmbedInput& out) {
  out.is_ids = true;
  out.ids.reserve(arr.size());
  if (arr.empty()) return bad_request(where + " is an empty list of token ids", param);
  for (const auto& t : arr) {
    if (!t.is_number_integer())
      return bad_request(where + " must hold only integer token ids, found " + type_name(t), param, "invalid_type");
    // Range against the vocabulary is checked later; here only that it fits an int32 id at all.
    if (t.is_number_unsigned() ? t.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
                               : (t.get<int64_t>() < 0 || t.get<int64_t>() > std::numeric_limits<int32_t>::max()))
      return bad_request(where + " holds token id " + t.dump() + ", outside the vocabulary", param);
    out.ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return std::nullopt;
}

// string | [string] | [int] | [[int]] → inputs.
std::optional<ApiError> parse_inputs(const json& o, const char* param, size_t max_inputs, std::vector<EmbedInput>& out) {
  auto it = o.find(param);
  if (it == o.end() || it->is_null()) return bad_request(std::string("'") + param + "' is required", param, "missing_field");
  const json& v = *it;
  const std::string name = std::string("'") + param + "'";
  if (v.is_string()) {
    out.resize(1);
    return text_input(v, name, param, out[0]);
  }
  if (!v.is_array())
    return bad_request(name + " must be a string, a list of strings, a list of token ids or a list of lists of token ids, got " +
                           type_name(v), param, "invalid_type");
  if (v.empty()) return bad_request(name + " is an empty list; send at least one input", param);
  if (v.front().is_number()) {  // one sequence of token ids
    out.resize(1);
    return id_input(v, name, param, out[0]);
  }
  if (v.size() > max_inputs)
    return bad_request(name + " has " + std::to_string(v.size()) + " inputs, more than the limit of " +
                           std::to_string(max_inputs) + " per request; split it into several requests, or start the server with a higher "
                           "--max-inputs-per-request", param, "too_many_inputs");
  const bool strings = v.front().is_string();
  out.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = name + "[" + std::to_string(i) + "]";
    if (strings && v[i].is_string()) {
      if (auto e = text_input(v[i], where, param, out[i])) return e;
    } else if (!strings && v[i].is_array()) {
      if (auto e = id_input(v[i], where, param, out[i])) return e;
    } else {
      return bad_request(where + " is " + type_name(v[i]) + "; a list must hold only strings or only lists of token ids",
                         param, "invalid_type");
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_openai_embedding_request(std::string_view body, size_t max_inputs, int64_t max_dimensions,
                                                       EmbedParams& out) {
  json o;
  if (auto e = parse_object(body, o)) return e;
  try {
    if (auto e = parse_inputs(o, "input", max_inputs, out.inputs)) return e;
    if (auto e = get_string(o, "model", out.model)) return e;
    if (auto e = get_int(o, "dimensions", 1, max_dimensions, out.dimensions)) return e;
    std::optional<std::string> format, user;
    if (auto e = get_string(o, "encoding_format", format)) return e;
    if (format && *format != "float" && *format != "base64")
      return bad_request("'encoding_format' must be \"float\" or \"base64\", got \"" + *format + "\"", "encoding_format");
    out.base64 = format && *format == "base64";
    if (auto e = get_string(o, "user", user)) return e;
    if (auto e = get_string(o, "prompt_name", out.prompt_name)) return e;
    if (auto e = get_string(o, "instruction", out.instruction)) return e;
    if (auto e = get_bool(o, "truncate", out.truncate)) return e;
  } catch (const json::exception& e) {
    return bad_request(std::string("malformed request: ") + e.what());
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tei_embed_request(std::string_view body, size_t max_inputs, int64_t max_dimensions,
                                                EmbedParams& out) {
  json o;
  if (auto e = parse_object(body, o)) return e;
  try {
    if (auto e = parse_inputs(o, "inputs", max_inputs, out.inputs)) return e;
    bool normalize = true;
    if (auto e = get_bool(o, "normalize", normalize)) return e;
    out.normalize = normalize;
    if (auto e = get_bool(o, "truncate", out.truncate)) return e;
    std::optional<std::string> direction;
    if (auto e = get_string(o, "truncation_direction", direction)) return e;
    if (direction) {
      if (*direction == "Left" || *direction == "left") out.truncate_left = true;
      else if (*direction != "Right" && *direction != "right")
        return bad_request("'truncation_direction' must be \"Left\" or \"Right\", got \"" + *direction + "\"",
                           "truncation_direction");
    }
    if (auto e = get_string(o, "prompt_name", out.prompt_name)) return e;
    if (auto e = get_int(o, "dimensions", 1, max_dimensions, out.dimensions)) return e;
  } catch (const json::exception& e) {
    return bad_request(std::string("malformed request: ") + e.what());
  }
  return std::nullopt;
}

std::optional<ApiError> parse_tokenize_request(std::string_view body, size_t max_inputs, TokenizeParams& out) {
  json o;
  if (auto e = parse_object(body, o)) return e;
  try {
    const char* key = o.contains("prompt") ? "prompt" : "input";
    std::vector<EmbedInput> inputs;
    if (auto e = parse_inputs(o, key, max_inputs, inputs)) return e;
    for (auto& in : inputs) {
      if (in.is_ids) return bad_request(std::string("'") + key + "' must be text to tokenise, not token ids", key, "invalid_type");
      out.texts.push_back(std::move(in.text));
    }
    out.batched = o[key].is_array();
    if (auto e = get_bool(o, "add_special_tokens", out.add_special_tokens)) return e;
    if (auto e = get_string(o, "model", out.model)) return e;
  } catch (const json::exception& e) {
    return bad_request(std::string("malformed request: ") + e.what());
  }
  return std::nullopt;
}

}  // namespace embedserve
