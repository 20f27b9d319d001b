// config.json → ModelConfig for Qwen3, as written by transformers 4.x (rope_theta, torch_dtype at top level)
// and 5.x (rope_parameters.rope_theta, dtype), with the checks that keep later shape arithmetic safe.
#include "weights/model_config.h"

#include <string>

#include "weights/json_file.h"
#include "weights/quantization_config.h"

namespace embedserve {

using nlohmann::json;

namespace {

// Upper bound on any single size: keeps products such as vocab × hidden and heads × head_dim far inside
// int64 and catches configs that are garbage rather than merely large (the 8B has hidden 4096, vocab 151665).
constexpr int64_t kMaxDim = int64_t{1} << 24;

struct Reader {
  const json& j;
  std::string file;

  // A required positive size.
  StatusOr<int> size(const std::string& key) {
    EMBEDSERVE_ASSIGN_OR_RETURN(auto v, json_file::get_int(j, key, file));
    if (!v) return invalid_argument(file + ": missing field " + key);
    return check(key, *v);
  }
  // An optional positive size with a default.
  StatusOr<int> size_or(const std::string& key, int fallback) {
    EMBEDSERVE_ASSIGN_OR_RETURN(auto v, json_file::get_int(j, key, file));
    if (!v) return fallback;
    return check(key, *v);
  }
  StatusOr<int> check(const std::string& key, int64_t v) {
    if (v <= 0 || v > kMaxDim)
      return invalid_argument(file + ": field " + key + " must be between 1 and " + std::to_string(kMaxDim) +
                              ", got " + std::to_string(v));
    return static_cast<int>(v);
  }
};

StatusOr<DType> parse_dtype(const std::string& s, const std::string& file, const std::string& key) {
  // transformers writes torch dtype names without the "torch." prefix; older files sometimes keep it.
  std::string name = s.rfind("torch.", 0) == 0 ? s.substr(6) : s;
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16" || name == "half") return DType::kF16;
  if (name == "float32" || name == "float") return DType::kF32;
  return unimplemented(file + ": " + key + " \"" + s + "\" is not supported (bfloat16, float16 or float32)");
}

// Fields that would change the computation in ways embedserve does not implement. Silently ignoring them
// would produce wrong vectors, so each is an unimplemented error naming it.
Status check_unsupported_features(const json& j, const std::string& file) {
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null())
    return unimplemented(file + ": rope_scaling " + json_file::brief(*it) +
                         " is not supported (only the default RoPE; rope_scaling must be null)");
  EMBEDSERVE_ASSIGN_OR_RETURN(auto bias, json_file::get_bool(j, "attention_bias", file));
  if (bias.value_or(false)) return unimplemented(file + ": attention_bias=true is not supported by Qwen3 here");
  EMBEDSERVE_ASSIGN_OR_RETURN(auto sliding, json_file::get_bool(j, "use_sliding_window", file));
  if (sliding.value_or(false))
    return unimplemented(file + ": use_sliding_window=true is not supported (embedserve attends to all tokens)");
  EMBEDSERVE_ASSIGN_OR_RETURN(auto act, json_file::get_string(j, "hidden_act", file));
  if (act && *act != "silu")
    return unimplemented(file + ": hidden_act \"" + *act + "\" is not supported (Qwen3 uses silu)");
  return Status();
}

// transformers 5.x moved rope_theta into rope_parameters (a dict; per layer type for some models).
StatusOr<double> parse_rope_theta(const json& j, const std::string& file) {
  EMBEDSERVE_ASSIGN_OR_RETURN(auto top, json_file::get_number(j, "rope_theta", file));
  std::optional<double> theta = top;
  if (auto it = j.find("rope_parameters"); it != j.end() && !it->is_null()) {
    if (!it->is_object())
      return invalid_argument(file + ": field rope_parameters must be an object, got " + json_file::brief(*it));
    EMBEDSERVE_ASSIGN_OR_RETURN(auto type, json_file::get_string(*it, "rope_type", file + " rope_parameters"));
    if (type && *type != "default")
      return unimplemented(file + ": rope_parameters.rope_type \"" + *type +
                           "\" is not supported (only \"default\" RoPE)");
    EMBEDSERVE_ASSIGN_OR_RETURN(auto nested, json_file::get_number(*it, "rope_theta", file + " rope_parameters"));
    if (nested) {
      if (theta && *theta != *nested)
        return invalid_argument(file + ": rope_theta " + std::to_string(*theta) +
                                " disagrees with rope_parameters.rope_theta " + std::to_string(*nested));
      theta = nested;
    }
  }
  // Qwen3Config's default when neither is written.
  double value = theta.value_or(10000.0);
  if (!(value > 0)) return invalid_argument(file + ": rope_theta must be positive, got " + std::to_string(value));
  return value;
}

}  // namespace

StatusOr<ModelConfig> load_model_config(const std::filesystem::path& config_json) {
  const std::string file = config_json.string();
  EMBEDSERVE_ASSIGN_OR_RETURN(json j, json_file::read(config_json));
  if (!j.is_object()) return invalid_argument(file + ": expected a JSON object, got " + json_file::brief(j));

  ModelConfig c;
  EMBEDSERVE_ASSIGN_OR_RETURN(auto model_type, json_file::get_string(j, "model_type", file));
  c.model_type = model_type.value_or("");
  if (auto it = j.find("architectures"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->empty() || !(*it)[0].is_string())
      return invalid_argument(file + ": field architectures must be a list of names, got " + json_file::brief(*it));
    c.architecture = (*it)[0].get<std::string>();
  }
  const bool qwen3_arch = c.architecture == "Qwen3Model" || c.architecture == "Qwen3ForCausalLM";
  // Either field alone identifies Qwen3 (hand-written configs sometimes omit one); both must agree.
  if (c.model_type.empty() && qwen3_arch) c.model_type = "qwen3";
  if (c.model_type != "qwen3" || !(qwen3_arch || c.architecture.empty())) {
    std::string what = c.architecture.empty() ? "model_type \"" + c.model_type + "\""
                                              : "architecture " + c.architecture + " (model_type \"" +
                                                    c.model_type + "\")";
    return unimplemented(file + ": " + what +
                         " is not supported; embedserve runs Qwen3 (Qwen3Model or Qwen3ForCausalLM, model_type "
                         "\"qwen3\")");
  }
  if (c.architecture.empty()) c.architecture = "Qwen3Model";
  EMBEDSERVE_RETURN_IF_ERROR(check_unsupported_features(j, file));

  Reader r{j, file};
  EMBEDSERVE_ASSIGN_OR_RETURN(c.hidden_size, r.size("hidden_size"));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.intermediate_size, r.size("intermediate_size"));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.num_hidden_layers, r.size("num_hidden_layers"));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.num_attention_heads, r.size("num_attention_heads"));
  // transformers: num_key_value_heads defaults to num_attention_heads (plain multi-head attention), and
  // head_dim to hidden_size / num_attention_heads.
  EMBEDSERVE_ASSIGN_OR_RETURN(c.num_key_value_heads, r.size_or("num_key_value_heads", c.num_attention_heads));
  if (!j.contains("head_dim") || j["head_dim"].is_null()) {
    if (c.hidden_size % c.num_attention_heads != 0)
      return invalid_argument(file + ": head_dim is absent and hidden_size " + std::to_string(c.hidden_size) +
                              " is not divisible by num_attention_heads " + std::to_string(c.num_attention_heads));
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(c.head_dim, r.size_or("head_dim", c.hidden_size / c.num_attention_heads));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.max_position_embeddings, r.size("max_position_embeddings"));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.vocab_size, r.size("vocab_size"));
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return invalid_argument(file + ": num_attention_heads " + std::to_string(c.num_attention_heads) +
                            " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
  if (c.head_dim % 2 != 0)
    return invalid_argument(file + ": head_dim " + std::to_string(c.head_dim) +
                            " must be even (RoPE rotates pairs of dimensions)");
  // transformers 5.x lists each layer's attention kind; only full (causal) attention is implemented.
  if (auto it = j.find("layer_types"); it != j.end() && !it->is_null()) {
    if (!it->is_array() || it->size() != static_cast<size_t>(c.num_hidden_layers))
      return invalid_argument(file + ": layer_types must list one entry per layer (" +
                              std::to_string(c.num_hidden_layers) + "), got " + json_file::brief(*it));
    for (size_t i = 0; i < it->size(); ++i) {
      const auto& t = (*it)[i];
      if (!t.is_string() || t.get<std::string>() != "full_attention")
        return unimplemented(file + ": layer_types[" + std::to_string(i) + "] is " + json_file::brief(t) +
                             "; only \"full_attention\" is supported");
    }
  }
  if (int64_t{c.num_attention_heads} * c.head_dim > kMaxDim)
    return invalid_argument(file + ": num_attention_heads × head_dim is implausibly large");

  EMBEDSERVE_ASSIGN_OR_RETURN(auto eps, json_file::get_number(j, "rms_norm_eps", file));
  c.rms_norm_eps = eps.value_or(1e-6);
  if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1))
    return invalid_argument(file + ": rms_norm_eps must be in (0, 1), got " + std::to_string(c.rms_norm_eps));
  EMBEDSERVE_ASSIGN_OR_RETURN(c.rope_theta, parse_rope_theta(j, file));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto tie, json_file::get_bool(j, "tie_word_embeddings", file));
  c.tie_word_embeddings = tie.value_or(false);

  // transformers 5.x writes "dtype", 4.x "torch_dtype"; absent means the checkpoint was saved in float32
  // (transformers' own default).
  EMBEDSERVE_ASSIGN_OR_RETURN(auto dtype5, json_file::get_string(j, "dtype", file));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto dtype4, json_file::get_string(j, "torch_dtype", file));
  if (dtype5) {
    EMBEDSERVE_ASSIGN_OR_RETURN(c.dtype, parse_dtype(*dtype5, file, "dtype"));
  } else if (dtype4) {
    EMBEDSERVE_ASSIGN_OR_RETURN(c.dtype, parse_dtype(*dtype4, file, "torch_dtype"));
  } else {
    c.dtype = DType::kF32;
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(CheckpointQuantization q, parse_quantization_config(j, file));
  c.quantization = q.method;
  c.quantization_layout = q.layout;
  return c;
}

}  // namespace embedserve
