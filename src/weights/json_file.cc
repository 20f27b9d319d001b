// Reading small JSON files with errors that name the file and the field.
#include "weights/json_file.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "weights/mapped_file.h"

namespace embedserve::json_file {

using nlohmann::json;

StatusOr<json> read(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return not_found(path.string() + ": no such file");
  if (std::filesystem::is_directory(path, ec)) return invalid_argument(path.string() + " is a directory, expected a JSON file");
  EMBEDSERVE_RETURN_IF_ERROR(require_regular_file(path));
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path.string() + ": cannot open: " + std::strerror(errno));
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return io_error(path.string() + ": read failed");
  // allow_exceptions=false: a parse error yields a discarded value instead of throwing.
  json j = json::parse(buf.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return data_loss(path.string() + ": not valid JSON (truncated or corrupt file?)");
  return j;
}

namespace {
// Prints at most a few levels: the value may come from any file, and nlohmann's dump() recurses once per
// nesting level, which a hostile file could use to exhaust the stack.
void brief_into(const json& v, int depth, std::string& out) {
  if (out.size() > 80) return;
  if (v.is_object()) {
    if (depth >= 2) { out += "{...}"; return; }
    out += '{';
    bool first = true;
    for (const auto& [k, x] : v.items()) {
      if (out.size() > 80) break;
      if (!first) out += ", ";
      first = false;
      out += json(k).dump(-1, ' ', false, json::error_handler_t::replace) + ": ";
      brief_into(x, depth + 1, out);
    }
    out += '}';
  } else if (v.is_array()) {
    if (depth >= 2) { out += "[...]"; return; }
    out += '[';
    for (size_t i = 0; i < v.size() && out.size() <= 80; ++i) {
      if (i) out += ", ";
      brief_into(v[i], depth + 1, out);
    }
    out += ']';
  } else {
    out += v.dump(-1, ' ', false, json::error_handler_t::replace);
  }
}
}  // namespace

std::string brief(const json& value) {
  std::string s;
  brief_into(value, 0, s);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

namespace {
Status wrong_type(const std::string& file, const std::string& key, const char* want, const json& got) {
  return invalid_argument(file + ": field " + key + " must be " + want + ", got " + brief(got));
}
}  // namespace

StatusOr<std::optional<int64_t>> get_int(const json& obj, const std::string& key, const std::string& file) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<int64_t>();
  if (it->is_number_unsigned()) {
    uint64_t v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(INT64_MAX)) return wrong_type(file, key, "an integer in range", *it);
    return std::optional<int64_t>(static_cast<int64_t>(v));
  }
  if (it->is_number_integer()) return std::optional<int64_t>(it->get<int64_t>());
  // 1e6 or 1000000.0 are integers written as floats; accept them when exact.
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15)
      return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  return wrong_type(file, key, "an integer", *it);
}

StatusOr<std::optional<double>> get_number(const json& obj, const std::string& key, const std::string& file) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return wrong_type(file, key, "a number", *it);
  double d = it->get<double>();
  if (!std::isfinite(d)) return wrong_type(file, key, "a finite number", *it);
  return std::optional<double>(d);
}

StatusOr<std::optional<bool>> get_bool(const json& obj, const std::string& key, const std::string& file) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return wrong_type(file, key, "true or false", *it);
  return std::optional<bool>(it->get<bool>());
}

StatusOr<std::optional<std::string>> get_string(const json& obj, const std::string& key, const std::string& file) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return wrong_type(file, key, "a string", *it);
  return std::optional<std::string>(it->get<std::string>());
}

}  // namespace embedserve::json_file
