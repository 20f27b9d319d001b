// parse_quantization_config: vLLM's "fp8" and compressed-tensors' float-quantized FP8 accepted, the rest refused.
#include "weights/quantization_config.h"

#include "weights/json_file.h"

namespace embedserve {

using nlohmann::json;

namespace {

const char* kSupported =
    "embedserve reads FP8 e4m3 checkpoints with per-tensor or per-channel weight scales and dynamic activations "
    "(quant_method \"fp8\" as vLLM and SGLang write it, or compressed-tensors \"float-quantized\" as "
    "llm-compressor's FP8_DYNAMIC scheme writes it)";

Status refuse(const std::string& file, const std::string& what) {
  return unimplemented(file + ": quantization_config " + what + " is not supported; " + kSupported);
}

StatusOr<CheckpointQuantization> vllm_fp8(const json& q, const std::string& file) {
  EMBEDSERVE_ASSIGN_OR_RETURN(auto scheme, json_file::get_string(q, "activation_scheme", file));
  if (scheme && *scheme != "dynamic")
    return refuse(file, "activation_scheme \"" + *scheme + "\" (static input scales)");
  if (auto it = q.find("weight_block_size"); it != q.end() && !it->is_null())
    return refuse(file, "weight_block_size " + json_file::brief(*it) + " (block-wise FP8 scales)");
  return CheckpointQuantization{Quantization::kFp8, "fp8 (quant_method fp8), dynamic per-token activations"};
}

Status check_float8(const json& args, const std::string& file, const std::string& where) {
  EMBEDSERVE_ASSIGN_OR_RETURN(auto bits, json_file::get_int(args, "num_bits", file));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto type, json_file::get_string(args, "type", file));
  if (bits.value_or(0) != 8 || type.value_or("") != "float")
    return refuse(file, where + " " + json_file::brief(args) + " (only 8-bit float, i.e. FP8 e4m3)");
  if (auto it = args.find("block_structure"); it != args.end() && !it->is_null())
    return refuse(file, where + ".block_structure " + json_file::brief(*it));
  return Status();
}

StatusOr<CheckpointQuantization> compressed_tensors(const json& q, const std::string& file) {
  EMBEDSERVE_ASSIGN_OR_RETURN(auto format, json_file::get_string(q, "format", file));
  if (format.value_or("") != "float-quantized")
    return refuse(file, "compressed-tensors format \"" + format.value_or("") + "\"");
  auto groups = q.find("config_groups");
  if (groups == q.end() || !groups->is_object() || groups->empty())
    return refuse(file, "compressed-tensors without config_groups");
  bool dynamic_inputs = false;
  for (const auto& [name, group] : groups->items()) {
    const std::string where = "config_groups." + name;
    if (!group.is_object()) return refuse(file, where + " " + json_file::brief(group));
    auto weights = group.find("weights");
    if (weights == group.end() || !weights->is_object()) return refuse(file, where + " without weights");
    EMBEDSERVE_RETURN_IF_ERROR(check_float8(*weights, file, where + ".weights"));
    EMBEDSERVE_ASSIGN_OR_RETURN(auto strategy, json_file::get_string(*weights, "strategy", file));
    if (strategy.value_or("") != "channel" && strategy.value_or("") != "tensor")
      return refuse(file, where + ".weights.strategy \"" + strategy.value_or("") + "\" (channel or tensor only)");
    EMBEDSERVE_ASSIGN_OR_RETURN(auto dynamic, json_file::get_bool(*weights, "dynamic", file));
    EMBEDSERVE_ASSIGN_OR_RETURN(auto symmetric, json_file::get_bool(*weights, "symmetric", file));
    if (dynamic.value_or(false) || !symmetric.value_or(true))
      return refuse(file, where + ".weights " + json_file::brief(*weights) + " (static symmetric weights only)");
    auto inputs = group.find("input_activations");
    if (inputs != group.end() && !inputs->is_null()) {
      if (!inputs->is_object()) return refuse(file, where + ".input_activations " + json_file::brief(*inputs));
      EMBEDSERVE_RETURN_IF_ERROR(check_float8(*inputs, file, where + ".input_activations"));
      EMBEDSERVE_ASSIGN_OR_RETURN(auto in_dynamic, json_file::get_bool(*inputs, "dynamic", file));
      EMBEDSERVE_ASSIGN_OR_RETURN(auto in_strategy, json_file::get_string(*inputs, "strategy", file));
      if (!in_dynamic.value_or(false) || in_strategy.value_or("token") != "token")
        return refuse(file, where + ".input_activations " + json_file::brief(*inputs) +
                                " (static input scales; only dynamic per-token activations)");
      dynamic_inputs = true;
    }
  }
  // Weight-only FP8 (no input_activations) runs the same way: embedserve quantises activations per token anyway.
  return CheckpointQuantization{Quantization::kFp8, std::string("fp8 (compressed-tensors float-quantized), ") +
                                                        (dynamic_inputs ? "dynamic per-token activations"
                                                                        : "weight-only, activations per token")};
}

}  // namespace

StatusOr<CheckpointQuantization> parse_quantization_config(const json& config, const std::string& file) {
  auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return CheckpointQuantization{};
  if (!it->is_object()) return refuse(file, json_file::brief(*it));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto method, json_file::get_string(*it, "quant_method", file));
  if (method == "fp8") return vllm_fp8(*it, file);
  if (method == "compressed-tensors") return compressed_tensors(*it, file);
  return refuse(file, "quant_method \"" + method.value_or("") + "\"");
}

}  // namespace embedserve
