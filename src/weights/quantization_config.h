// config.json's quantization_config: which FP8 checkpoint layouts embedserve reads as stored, and a clear error
// naming any other layout.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "core/types.h"

namespace embedserve {

// What a checkpoint's quantization_config says, once accepted.
struct CheckpointQuantization {
  Quantization method = Quantization::kNone;
  std::string layout;  // for the start-up line, e.g. "fp8 (vLLM), dynamic activations"
};

// Accepted: no quantization_config; vLLM's/SGLang's `quant_method: "fp8"` with dynamic activations and no
// `weight_block_size` (weights F8_E4M3 with a per-tensor or per-channel `weight_scale`); compressed-tensors'
// `format: "float-quantized"` with 8-bit float weights (channel or tensor strategy, static, symmetric) and
// dynamic per-token 8-bit float input activations or none (llm-compressor's FP8_DYNAMIC and FP8 weight-only).
// Anything else is unimplemented, naming the method or field that is not read.
StatusOr<CheckpointQuantization> parse_quantization_config(const nlohmann::json& config, const std::string& file);

}  // namespace embedserve
