// sentence-transformers' files beside a checkpoint → pooling, normalisation and named prompts.
// Absent files mean Qwen3-Embedding's own setup (last-token pooling, then L2 normalisation, no prompts),
// which is what the official repositories ship, so a bare transformers checkpoint embeds the same way.
#include "weights/sentence_transformers_config.h"

#include <string>
#include <string_view>

#include "weights/json_file.h"

namespace embedserve {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The module types the embedding pipeline may contain. Anything else (Dense, LayerNorm, ...) transforms
// the vector, and skipping it would give silently different embeddings.
enum class Module { kTransformer, kPooling, kNormalize, kOther };
Module module_kind(const std::string& type) {
  if (ends_with(type, ".Transformer") || type == "Transformer") return Module::kTransformer;
  if (ends_with(type, ".Pooling") || type == "Pooling") return Module::kPooling;
  if (ends_with(type, ".Normalize") || type == "Normalize") return Module::kNormalize;
  return Module::kOther;
}

// A pooling folder named by modules.json must stay inside the model directory.
bool safe_relative(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  for (const auto& part : fs::path(p)) {
    if (part == "..") return false;
  }
  return true;
}

struct ModulesInfo {
  bool normalize = false;
  std::optional<std::string> pooling_dir;  // relative to the model directory
};

StatusOr<ModulesInfo> parse_modules(const json& j, const std::string& file) {
  if (!j.is_array()) return invalid_argument(file + ": expected a list of modules, got " + json_file::brief(j));
  ModulesInfo info;
  for (const auto& m : j) {
    if (!m.is_object()) return invalid_argument(file + ": each module must be an object, got " + json_file::brief(m));
    EMBEDSERVE_ASSIGN_OR_RETURN(auto type, json_file::get_string(m, "type", file));
    if (!type) return invalid_argument(file + ": a module has no \"type\": " + json_file::brief(m));
    switch (module_kind(*type)) {
      case Module::kTransformer:
        break;
      case Module::kNormalize:
        info.normalize = true;
        break;
      case Module::kPooling: {
        if (info.pooling_dir) return unimplemented(file + ": more than one Pooling module is not supported");
        EMBEDSERVE_ASSIGN_OR_RETURN(auto path, json_file::get_string(m, "path", file));
        std::string dir = path.value_or("");
        if (!safe_relative(dir))
          return invalid_argument(file + ": the Pooling module's path must be a folder inside the model directory, got " +
                                  json_file::brief(m.value("path", json())));
        info.pooling_dir = std::move(dir);
        break;
      }
      case Module::kOther:
        return unimplemented(file + ": module type " + *type +
                             " is not supported (embedserve runs Transformer → Pooling → Normalize)");
    }
  }
  return info;
}

StatusOr<Pooling> parse_pooling(const json& j, const std::string& file) {
  if (!j.is_object()) return invalid_argument(file + ": expected a JSON object, got " + json_file::brief(j));
  struct Mode {
    const char* key;
    std::optional<Pooling> pooling;  // nullopt: a mode sentence-transformers has and embedserve does not
  };
  static constexpr Mode kModes[] = {
      {"pooling_mode_lasttoken", Pooling::kLastToken},
      {"pooling_mode_mean_tokens", Pooling::kMean},
      {"pooling_mode_cls_token", Pooling::kCls},
      {"pooling_mode_max_tokens", std::nullopt},
      {"pooling_mode_mean_sqrt_len_tokens", std::nullopt},
      {"pooling_mode_weightedmean_tokens", std::nullopt},
  };
  std::optional<Pooling> chosen;
  std::string chosen_key;
  for (const Mode& mode : kModes) {
    EMBEDSERVE_ASSIGN_OR_RETURN(auto on, json_file::get_bool(j, mode.key, file));
    if (!on.value_or(false)) continue;
    if (!mode.pooling) return unimplemented(file + ": " + mode.key + " is not supported (lasttoken, mean_tokens or cls_token)");
    // sentence-transformers concatenates the vectors of several modes; embedserve returns one.
    if (chosen)
      return unimplemented(file + ": both " + chosen_key + " and " + mode.key +
                           " are set; concatenated pooling modes are not supported");
    chosen = mode.pooling;
    chosen_key = mode.key;
  }
  // Newer sentence-transformers write "pooling_mode": "lasttoken" / "mean" / "cls".
  EMBEDSERVE_ASSIGN_OR_RETURN(auto named, json_file::get_string(j, "pooling_mode", file));
  if (named && !chosen) {
    if (*named == "lasttoken") chosen = Pooling::kLastToken;
    else if (*named == "mean") chosen = Pooling::kMean;
    else if (*named == "cls") chosen = Pooling::kCls;
    else return unimplemented(file + ": pooling_mode \"" + *named + "\" is not supported (lasttoken, mean or cls)");
  }
  if (!chosen) return invalid_argument(file + ": no pooling mode is set (expected pooling_mode_lasttoken: true or similar)");
  // include_prompt=false drops the instruction's tokens from the mean; last-token and CLS do not depend on it.
  EMBEDSERVE_ASSIGN_OR_RETURN(auto include_prompt, json_file::get_bool(j, "include_prompt", file));
  if (*chosen == Pooling::kMean && !include_prompt.value_or(true))
    return unimplemented(file + ": include_prompt=false with mean pooling is not supported");
  return *chosen;
}

Status parse_prompts(const json& j, const std::string& file, SentenceTransformersConfig& out) {
  if (!j.is_object()) return invalid_argument(file + ": expected a JSON object, got " + json_file::brief(j));
  if (auto it = j.find("prompts"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return invalid_argument(file + ": field prompts must be an object, got " + json_file::brief(*it));
    for (const auto& [name, text] : it->items()) {
      if (!text.is_string())
        return invalid_argument(file + ": prompt \"" + name + "\" must be a string, got " + json_file::brief(text));
      out.prompts[name] = text.get<std::string>();
    }
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(out.default_prompt_name, json_file::get_string(j, "default_prompt_name", file));
  if (out.default_prompt_name && !out.prompts.count(*out.default_prompt_name))
    return invalid_argument(file + ": default_prompt_name \"" + *out.default_prompt_name +
                            "\" is not one of the prompts");
  return Status();
}

}  // namespace

StatusOr<SentenceTransformersConfig> load_sentence_transformers_config(const fs::path& model_dir) {
  SentenceTransformersConfig out;  // Qwen3-Embedding's defaults: last token, normalise
  std::error_code ec;
  fs::path pooling_dir = "1_Pooling";

  const fs::path modules_path = model_dir / "modules.json";
  if (fs::exists(modules_path, ec)) {
    EMBEDSERVE_ASSIGN_OR_RETURN(json modules, json_file::read(modules_path));
    EMBEDSERVE_ASSIGN_OR_RETURN(ModulesInfo info, parse_modules(modules, modules_path.string()));
    out.normalize = info.normalize;
    if (!info.pooling_dir)
      return unimplemented(modules_path.string() +
                           ": no Pooling module; embedserve needs one to turn token states into one vector");
    pooling_dir = *info.pooling_dir;
    const fs::path pooling_path = model_dir / pooling_dir / "config.json";
    // modules.json names the folder, so its config must be there.
    if (!fs::exists(pooling_path, ec))
      return not_found(pooling_path.string() + ": no such file (modules.json names the Pooling module's folder \"" +
                       pooling_dir.string() + "\")");
  }
  const fs::path pooling_path = model_dir / pooling_dir / "config.json";
  if (fs::exists(pooling_path, ec)) {
    EMBEDSERVE_ASSIGN_OR_RETURN(json pooling, json_file::read(pooling_path));
    EMBEDSERVE_ASSIGN_OR_RETURN(out.pooling, parse_pooling(pooling, pooling_path.string()));
  }

  const fs::path st_path = model_dir / "config_sentence_transformers.json";
  if (fs::exists(st_path, ec)) {
    EMBEDSERVE_ASSIGN_OR_RETURN(json st, json_file::read(st_path));
    EMBEDSERVE_RETURN_IF_ERROR(parse_prompts(st, st_path.string(), out));
  }
  return out;
}

}  // namespace embedserve
