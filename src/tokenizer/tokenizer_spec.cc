// Reads and validates tokenizer.json (and tokenizer_config.json) into a TokenizerSpec.
#include "tokenizer/tokenizer_spec.h"

#include <climits>
#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "tokenizer/byte_level.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer_json.h"

namespace embedserve::tokenizer {
namespace {

using json = nlohmann::json;

Status unsupported(const std::string& what) {
  return unimplemented(what + " is not supported");
}

std::string type_of(const json& j) {
  if (j.is_null()) return "null";
  return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : "?";
}

// A boolean option that must have one value (absent or null counts as `expected`).
Status expect_flag(const json& j, const char* key, bool expected, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return Status();
  if (!j[key].is_boolean() || j[key].get<bool>() != expected)
    return unsupported(where + " with " + key + "=" + j[key].dump());
  return Status();
}

Status parse_normalizer(const json& n, TokenizerSpec& spec) {
  if (n.is_null()) return Status();
  const std::string type = type_of(n);
  if (type == "NFC") {
    spec.nfc = true;
    return Status();
  }
  if (type == "Sequence" && n.contains("normalizers") && n["normalizers"].is_array()) {
    for (const auto& sub : n["normalizers"]) EMBEDSERVE_RETURN_IF_ERROR(parse_normalizer(sub, spec));
    return Status();
  }
  return unsupported("normalizer type '" + type + "'");
}

Status check_byte_level(const json& b, const std::string& where) {
  EMBEDSERVE_RETURN_IF_ERROR(expect_flag(b, "add_prefix_space", false, where + " ByteLevel"));
  EMBEDSERVE_RETURN_IF_ERROR(expect_flag(b, "use_regex", false, where + " ByteLevel"));
  return Status();  // trim_offsets only changes offsets, which we do not produce
}

// Only the shape Qwen2/Qwen3 use: Sequence[Split(Qwen2 regex, Isolated), ByteLevel(no regex)].
Status parse_pre_tokenizer(const json& p) {
  if (type_of(p) != "Sequence" || !p.contains("pretokenizers") || !p["pretokenizers"].is_array())
    return unsupported("pre_tokenizer type '" + type_of(p) + "' (only Sequence[Split, ByteLevel] as in Qwen2)");
  const json& seq = p["pretokenizers"];
  if (seq.size() != 2 || type_of(seq[0]) != "Split" || type_of(seq[1]) != "ByteLevel") {
    std::string types;
    for (const auto& s : seq) types += (types.empty() ? "" : ", ") + type_of(s);
    return unsupported("pre_tokenizer Sequence[" + types + "] (only Sequence[Split, ByteLevel] as in Qwen2)");
  }
  const json& split = seq[0];
  if (!split.contains("pattern") || !split["pattern"].is_object() || !split["pattern"].contains("Regex") ||
      !split["pattern"]["Regex"].is_string() || split["pattern"]["Regex"].get<std::string>() != kQwen2SplitPattern)
    return unsupported("pre_tokenizer Split pattern " + split.value("pattern", json()).dump() +
                       " (only Qwen2's regex is implemented)");
  if (split.value("behavior", std::string()) != "Isolated")
    return unsupported("pre_tokenizer Split behavior '" + split.value("behavior", std::string("?")) + "'");
  EMBEDSERVE_RETURN_IF_ERROR(expect_flag(split, "invert", false, "pre_tokenizer Split"));
  return check_byte_level(seq[1], "pre_tokenizer");
}

Status parse_special_token_ids(const json& tp, const std::string& name, std::vector<int32_t>& out) {
  const json& specials = tp.value("special_tokens", json::object());
  if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
    return invalid_argument("post_processor template names special token '" + name +
                            "' but special_tokens does not define its ids");
  for (const auto& id : specials[name]["ids"]) out.push_back(id.get<int32_t>());
  return Status();
}

Status parse_template(const json& tp, TokenizerSpec& spec) {
  if (!tp.contains("single") || !tp["single"].is_array())
    return invalid_argument("TemplateProcessing has no 'single' template");
  bool seen_sequence = false;
  for (const auto& piece : tp["single"]) {
    if (piece.contains("Sequence")) {
      if (seen_sequence || piece["Sequence"].value("id", std::string()) != "A")
        return unsupported("post_processor TemplateProcessing single template " + tp["single"].dump());
      seen_sequence = true;
    } else if (piece.contains("SpecialToken")) {
      EMBEDSERVE_RETURN_IF_ERROR(parse_special_token_ids(tp, piece["SpecialToken"].value("id", std::string()),
                                                         seen_sequence ? spec.suffix_ids : spec.prefix_ids));
    } else {
      return unsupported("post_processor TemplateProcessing piece " + piece.dump());
    }
  }
  if (!seen_sequence) return unsupported("post_processor TemplateProcessing without its sequence $A");
  return Status();
}

Status parse_post_processor(const json& p, TokenizerSpec& spec) {
  if (p.is_null()) return Status();
  const std::string type = type_of(p);
  if (type == "ByteLevel") return check_byte_level(p, "post_processor");
  if (type == "TemplateProcessing") return parse_template(p, spec);
  if (type == "Sequence" && p.contains("processors") && p["processors"].is_array()) {
    for (const auto& sub : p["processors"]) EMBEDSERVE_RETURN_IF_ERROR(parse_post_processor(sub, spec));
    return Status();
  }
  return unsupported("post_processor type '" + type + "'");
}

// j[key], or null where j has no such key, without copying it (json::value copies: the model section is ~11 MB of
// vocabulary and merges).
const json& member(const json& j, const char* key) {
  static const json null;
  const auto it = j.find(key);
  return it == j.end() ? null : *it;
}

// m: the DOM's model; its vocab and merges entries come streamed in `streamed` (tokenizer_json.h).
Status parse_model(const json& m, const TokenizerJson& streamed, TokenizerSpec& spec) {
  if (type_of(m) != "BPE") return unsupported("model type '" + type_of(m) + "'");
  if (m.contains("dropout") && !m["dropout"].is_null()) return unsupported("model BPE dropout " + m["dropout"].dump());
  if (m.contains("unk_token") && !m["unk_token"].is_null()) return unsupported("model BPE unk_token");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (m.contains(key) && !m[key].is_null() && m[key] != "") return unsupported(std::string("model BPE ") + key);
  EMBEDSERVE_RETURN_IF_ERROR(expect_flag(m, "byte_fallback", false, "model BPE"));
  if (m.contains("ignore_merges") && m["ignore_merges"].is_boolean()) spec.ignore_merges = m["ignore_merges"];
  // The DOM's vocab object and merges array are there only where the reader streamed their entries, and they are
  // the last of each it read (a member given twice keeps the last, as a DOM does).
  if (!m.contains("vocab") || !m["vocab"].is_object() || !m.contains("merges") || !m["merges"].is_array())
    return invalid_argument("model BPE needs a 'vocab' object and a 'merges' array");
  EMBEDSERVE_RETURN_IF_ERROR(streamed.entry_error);

  spec.vocab.reserve(streamed.vocab.size());
  for (const auto& [token, id] : streamed.vocab) {  // a token given twice: the last id, as a JSON object keeps
    if (auto bytes = byte_level_to_bytes(token))
      spec.vocab.insert_or_assign(std::move(*bytes), id);
    else
      spec.non_byte_tokens.insert_or_assign(token, id);
  }
  spec.merges.reserve(streamed.merges.size());
  for (size_t r = 0; r < streamed.merges.size(); ++r) {
    auto a = byte_level_to_bytes(streamed.merges[r].first), b = byte_level_to_bytes(streamed.merges[r].second);
    if (!a || !b) return unsupported("model.merges[" + std::to_string(r) + "] with a token outside the byte-level alphabet");
    spec.merges.emplace_back(std::move(*a), std::move(*b));
  }
  return Status();
}

Status parse_added_tokens(const json& added, TokenizerSpec& spec) {
  if (added.is_null()) return Status();
  if (!added.is_array()) return invalid_argument("added_tokens is not an array");
  for (const auto& t : added) {
    if (!t.contains("id") || !t.contains("content") || !t["content"].is_string() || t["content"] == "")
      return invalid_argument("an added token lacks an id or content: " + t.dump());
    const std::string content = t["content"].get<std::string>();
    const std::string where = "added token '" + content + "'";
    // Matching with these flags (stripping whitespace around, word boundaries, matching after
    // normalisation) is not implemented: Qwen's tokens have them all false.
    for (const char* flag : {"single_word", "lstrip", "rstrip", "normalized"})
      EMBEDSERVE_RETURN_IF_ERROR(expect_flag(t, flag, false, where));
    if (!t["id"].is_number_integer() || t["id"].get<int64_t>() < 0 || t["id"].get<int64_t>() > INT32_MAX)
      return invalid_argument(where + " has an invalid id " + t["id"].dump());
    spec.added_tokens.push_back({t["id"].get<int32_t>(), content, t.value("special", false)});
  }
  return Status();
}

StatusOr<json> read_json(const std::filesystem::path& path) {
  EMBEDSERVE_ASSIGN_OR_RETURN(const std::string text, read_model_file(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return data_loss(path.string() + " is not valid JSON");
  return j;
}

// tokenizer_config.json is transformers' file; HF tokenizers ignores it. We read it only to refuse
// what would change the ids transformers produces and to catch a mismatched pair of files.
Status check_tokenizer_config(const json& cfg, const TokenizerSpec& spec) {
  if (cfg.value("split_special_tokens", false))
    return unimplemented("split_special_tokens=true is not supported");
  if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
    std::set<std::pair<int32_t, std::string>> ours;
    for (const auto& t : spec.added_tokens) ours.emplace(t.id, t.content);
    for (const auto& [id, tok] : cfg["added_tokens_decoder"].items()) {
      const auto key = std::make_pair(static_cast<int32_t>(std::stol(id)), tok.value("content", std::string()));
      if (!ours.count(key))
        return invalid_argument("added token " + id + " '" + key.second +
                                "' is not in tokenizer.json's added_tokens (files from different models?)");
    }
  }
  return Status();
}

}  // namespace

StatusOr<TokenizerSpec> load_tokenizer_spec(const std::filesystem::path& path) {
  std::filesystem::path file = path;
  std::filesystem::path config;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    file = path / "tokenizer.json";
    config = path / "tokenizer_config.json";
  } else {
    config = path.parent_path() / "tokenizer_config.json";
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(const TokenizerJson streamed, read_tokenizer_json(file));
  const json& j = streamed.dom;
  if (!j.is_object()) return data_loss(file.string() + " is not a JSON object");

  TokenizerSpec spec;
  Status st = [&]() -> Status {
    try {
      if (j.contains("truncation") && !j["truncation"].is_null())
        return unsupported("truncation set in the file (pass EncodeOptions::max_length instead)");
      if (j.contains("padding") && !j["padding"].is_null()) return unsupported("padding");
      EMBEDSERVE_RETURN_IF_ERROR(parse_normalizer(member(j, "normalizer"), spec));
      EMBEDSERVE_RETURN_IF_ERROR(parse_pre_tokenizer(member(j, "pre_tokenizer")));
      EMBEDSERVE_RETURN_IF_ERROR(parse_model(member(j, "model"), streamed, spec));
      EMBEDSERVE_RETURN_IF_ERROR(parse_added_tokens(member(j, "added_tokens"), spec));
      EMBEDSERVE_RETURN_IF_ERROR(parse_post_processor(member(j, "post_processor"), spec));
      const json& dec = member(j, "decoder");
      if (!dec.is_null()) {
        if (type_of(dec) != "ByteLevel") return unsupported("decoder type '" + type_of(dec) + "'");
      }
      return Status();
    } catch (const json::exception& e) {  // a field of the wrong JSON type
      return invalid_argument(std::string("unexpected structure: ") + e.what());
    }
  }();
  if (!st.ok()) return st.with_context(file.string());

  if (std::filesystem::exists(config, ec)) {
    EMBEDSERVE_ASSIGN_OR_RETURN(json cfg, read_json(config));
    Status cst;
    try {
      cst = check_tokenizer_config(cfg, spec);
    } catch (const std::exception& e) {
      cst = invalid_argument(std::string("unexpected structure: ") + e.what());
    }
    if (!cst.ok()) return cst.with_context(config.string());
  }
  return spec;
}

}  // namespace embedserve::tokenizer
