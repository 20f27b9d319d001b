// The flags every model-running command shares (--device, --dtype), parsed once into the engine's enums, and
// the environment variables the engine honours, read here and nowhere below cli/.
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "core/types.h"
#include "engine/engine_factory.h"
#include "weights/hub_environment.h"

namespace embedserve::cli {

// "cpu" | "cuda" | "auto" (nullopt). Anything else is an error naming --device and the value.
StatusOr<std::optional<Device>> parse_device(const std::string& value);
// "auto" | "f32" | "float32" | "bf16" | "bfloat16". Anything else is an error naming --dtype and the value.
StatusOr<Precision> parse_precision(const std::string& value);
// --quantization: "fp8" (SGLang's and vLLM's spelling), or "none"/empty for the checkpoint's own weights. Other
// methods SGLang knows are an error naming the one supported.
StatusOr<Quantization> parse_quantization(const std::string& value);
// The --quantization flag's help text, shared by serve, embed and bench.
inline constexpr const char* kQuantizationHelp =
    "fp8: GEMM weights quantised to FP8 e4m3 at load (one scale per output channel), activations per token; "
    "half the weights' memory of bf16 (an FP8 checkpoint is read as stored, flag or not)";

// Fills the options the environment decides: EMBEDSERVE_CUBLAS_PATH (libcublas.so.13 or its folder),
// EMBEDSERVE_CUBLAS_WORKSPACE_MB (a cuBLAS workspace, for measuring what batch invariance costs) and
// EMBEDSERVE_CPU_GEMM (the CPU's bf16-weight GEMM kernel, for measuring one kernel against another).
Status apply_engine_environment(EngineOptions& options);

// The hub's variables (HF_HUB_CACHE, HF_HOME, HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE, …; HubEnvironment::names()),
// read from the process environment for resolve_model_path.
HubEnvironment read_hub_environment();

}  // namespace embedserve::cli
