// Request parsing with nlohmann::json; every exception stays inside this file.
#include "server/request_parsing.h"

#include <functional>
#include <limits>
#include <unordered_map>
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

// What the parser keeps of one array instead of its DOM: integers never become DOM nodes (16+ bytes each, and a
// 57 MiB list of ids once cost 1 GB); they are counted and the first and last `id_cap` kept as int32 (an id past
// int32 is remembered as written, for the error). Other elements past `element_cap` are counted and dropped: a
// list that long is refused anyway, for too many inputs.
struct ArrayInfo {
  size_t elements = 0;            // every element the client sent
  size_t n_ints = 0;              // how many were integers
  std::vector<int32_t> head;      // the first id_cap integers (all of them when there are no more)
  std::vector<int32_t> tail;      // once there are more than id_cap: a ring of the last id_cap, id i at i % id_cap
  std::string first_out_of_range; // the first integer outside 0..INT32_MAX, as sent
};

struct ArraySideTable {
  std::unordered_map<const json::array_t*, ArrayInfo> arrays;  // keyed by the DOM array's storage, which is stable
};

class ParseContext {
 public:
  ParseContext(size_t id_cap, size_t element_cap) : id_cap_(id_cap), element_cap_(element_cap) {}

  // nlohmann's parser callback. `depth` is the nesting of the event's container's children: a container
  // started at depth d holds values reported at depth d + 1 and ends at depth d.
  bool operator()(int depth, json::parse_event_t event, json& parsed) {
    const auto d = static_cast<size_t>(depth);
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start: {
        const bool keep = count_element(d);
        if (frames_.size() < d + 2) frames_.resize(d + 2);
        frames_[d + 1] = Frame{event == json::parse_event_t::array_start, ArrayInfo{}};
        return keep;
      }
      case json::parse_event_t::array_end:
        if (d + 1 < frames_.size()) {
          if (auto* arr = parsed.get_ptr<json::array_t*>()) side_.arrays[arr] = std::move(frames_[d + 1].info);
        }
        return true;
      case json::parse_event_t::value:
        if (d < frames_.size() && frames_[d].is_array && parsed.is_number_integer()) {
          take_integer(frames_[d].info, parsed);
          return false;  // never a DOM node
        }
        return count_element(d);
      default:
        return true;
    }
  }
  ArraySideTable take() { return std::move(side_); }

 private:
  struct Frame {
    bool is_array = false;
    ArrayInfo info;
  };
  // Counts a non-integer element of the array at `d`; false (drop it) past the element cap.
  bool count_element(size_t d) {
    if (d >= frames_.size() || !frames_[d].is_array) return true;
    ArrayInfo& a = frames_[d].info;
    ++a.elements;
    return element_cap_ == 0 || a.elements - a.n_ints <= element_cap_;
  }
  void take_integer(ArrayInfo& a, const json& v) {
    ++a.elements;
    const size_t index = a.n_ints++;
    int32_t id = 0;
    const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(INT32_MAX)
                                             : v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT32_MAX;
    if (fits) id = static_cast<int32_t>(v.get<int64_t>());
    else if (a.first_out_of_range.empty()) a.first_out_of_range = v.dump();
    if (id_cap_ == 0 || index < id_cap_) {
      a.head.push_back(id);
      return;
    }
    if (a.tail.empty()) a.tail = a.head;  // the ring holds id i at i % id_cap; ids 0..id_cap-1 are the head
    a.tail[index % id_cap_] = id;
  }

  const size_t id_cap_, element_cap_;
  std::vector<Frame> frames_;  // by depth of their children
  ArraySideTable side_;
};

std::optional<ApiError> parse_object(std::string_view body, json& out, ArraySideTable& side, size_t id_cap = 0,
                                     size_t element_cap = 0) {
  ParseContext context(id_cap, element_cap);
  try {
    out = json::parse(body, std::ref(context));
  } catch (const json::parse_error& e) {
    // Covers malformed JSON, raw bytes that are not UTF-8 and lone \ud800-style surrogate escapes.
    return bad_request("the request body is not valid JSON: " + parse_error_reason(e.what()) + " at byte " +
                           std::to_string(e.byte),
                       "", "invalid_json");
  } catch (const json::exception& e) {
    return bad_request("the request body is not valid JSON: " + parse_error_reason(e.what()), "", "invalid_json");
  }
  if (!out.is_object()) return bad_request("the body must be a JSON object", "", "invalid_json");
  side = context.take();
  return std::nullopt;
}

const ArrayInfo* info_of(const ArraySideTable& side, const json& v) {
  const auto* arr = v.get_ptr<const json::array_t*>();
  if (!arr) return nullptr;
  auto it = side.arrays.find(arr);
  return it == side.arrays.end() ? nullptr : &it->second;
}

ApiError with_tei(ApiError e, TeiKind kind) {
  e.tei = kind;
  return e;
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

std::optional<ApiError> text_input(json& v, const std::string& where, const char* param, EmbedInput& out) {
  out.is_ids = false;
  out.text = std::move(v.get_ref<std::string&>());  // a 20 MB text is not copied
  if (out.text.empty()) return with_tei(bad_request(where + " is an empty string; every input needs some text", param), TeiKind::kEmpty);
  if (Status st = validate_utf8(out.text); !st.ok()) return bad_request(where + ": " + st.message(), param);
  return std::nullopt;
}

// A list of token ids: its integers are in `info` (the parser kept them out of the DOM); what is left in the DOM
// are its other elements, which make it invalid.
std::optional<ApiError> id_input(const json& arr, const ArrayInfo* info, const std::string& where, const char* param,
                                 EmbedInput& out) {
  out.is_ids = true;
  if (!arr.empty())
    return bad_request(where + " must hold only integer token ids, found " + type_name(arr.front()), param, "invalid_type");
  if (!info || info->n_ints == 0) return with_tei(bad_request(where + " is an empty list of token ids", param), TeiKind::kEmpty);
  // Range against the vocabulary is checked later; here only that it fits an int32 id at all.
  if (!info->first_out_of_range.empty())
    return with_tei(bad_request(where + " holds token id " + info->first_out_of_range + ", outside the vocabulary", param), TeiKind::kTokenizer);
  out.ids = info->head;
  out.ids_sent = info->n_ints;
  if (!info->tail.empty()) {  // the ring's oldest entry is at the next write position
    const size_t start = info->n_ints % info->tail.size();
    out.ids_tail.assign(info->tail.begin() + static_cast<ptrdiff_t>(start), info->tail.end());
    out.ids_tail.insert(out.ids_tail.end(), info->tail.begin(), info->tail.begin() + static_cast<ptrdiff_t>(start));
  }
  return std::nullopt;
}

// string | [string] | [int] | [[int]] → inputs.
std::optional<ApiError> parse_inputs(json& o, const ArraySideTable& side, const char* param, size_t max_inputs,
                                     std::vector<EmbedInput>& out) {
  auto it = o.find(param);
  if (it == o.end() || it->is_null()) return bad_request(std::string("'") + param + "' is required", param, "missing_field");
  json& v = *it;
  const std::string name = std::string("'") + param + "'";
  if (v.is_string()) {
    out.resize(1);
    return text_input(v, name, param, out[0]);
  }
  if (!v.is_array())
    return bad_request(name + " must be a string, a list of strings, a list of token ids or a list of lists of token ids, got " +
                           type_name(v), param, "invalid_type");
  const ArrayInfo* info = info_of(side, v);
  const size_t n = info ? info->elements : v.size();
  if (n == 0) return with_tei(bad_request(name + " is an empty list; send at least one input", param), TeiKind::kEmpty);
  if ((info && info->n_ints > 0) || v.front().is_number()) {  // one sequence of token ids
    out.resize(1);
    return id_input(v, info, name, param, out[0]);
  }
  if (n > max_inputs)
    return bad_request(name + " has " + std::to_string(n) + " inputs, more than the limit of " +
                           std::to_string(max_inputs) + " per request; split it into several requests, or start the server with a higher "
                           "--max-inputs-per-request", param, "too_many_inputs");
  const bool strings = v.front().is_string();
  out.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = name + "[" + std::to_string(i) + "]";
    if (strings && v[i].is_string()) {
      if (auto e = text_input(v[i], where, param, out[i])) return e;
    } else if (!strings && v[i].is_array()) {
      if (auto e = id_input(v[i], info_of(side, v[i]), where, param, out[i])) return e;
    } else {
      return bad_request(where + " is " + type_name(v[i]) + "; a list must hold only strings or only lists of token ids",
                         param, "invalid_type");
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> parse_openai_embedding_request(std::string_view body, size_t max_inputs, int64_t max_dimensions,
                                                       EmbedParams& out, size_t max_ids_per_input) {
  json o;
  ArraySideTable side;
  if (auto e = parse_object(body, o, side, max_ids_per_input, max_inputs + 1)) return e;
  try {
    if (auto e = parse_inputs(o, side, "input", max_inputs, out.inputs)) return e;
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
                                                EmbedParams& out, size_t max_ids_per_input) {
  json o;
  ArraySideTable side;
  if (auto e = parse_object(body, o, side, max_ids_per_input, max_inputs + 1)) return e;
  try {
    if (auto e = parse_inputs(o, side, "inputs", max_inputs, out.inputs)) return e;
    bool normalize = true;
    if (auto e = get_bool(o, "normalize", normalize)) return e;
    out.normalize = normalize;
    if (auto e = get_bool(o, "truncate", out.truncate)) return e;
    std::optional<std::string> direction;
    if (auto e = get_string(o, "truncation_direction", direction)) return e;
    if (direction) {
      if (*direction == "Left" || *direction == "left") out.truncate_left = true;
      else if (*direction != "Right" && *direction != "right")
        return with_tei(bad_request("'truncation_direction' must be \"Left\" or \"Right\", got \"" + *direction + "\"",
                                    "truncation_direction"),
                        TeiKind::kSchema);
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
  ArraySideTable side;
  if (auto e = parse_object(body, o, side, 1, max_inputs + 1)) return e;  // ids are refused here: keep one
  try {
    const char* key = o.contains("prompt") ? "prompt" : "input";
    std::vector<EmbedInput> inputs;
    if (auto e = parse_inputs(o, side, key, max_inputs, inputs)) return e;
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
