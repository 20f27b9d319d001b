// The flags every model-running command shares (--device, --dtype), parsed once into the engine's enums, and
// the environment variables the engine honours, read here and nowhere below cli/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "cli/flags.h"
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

// --device, --dtype and --quantization into options.device, .precision and .quantization, as embed and bench take
// them (serve reads them into its settings, with SGLang's float16 spellings of --dtype besides).
Status apply_engine_flags(const Flags& flags, EngineOptions& options);
// Fills the options the environment decides: EMBEDSERVE_CUBLAS_PATH (libcublas.so.13 or its folder),
// EMBEDSERVE_NCCL_PATH (libnccl.so.2 or its folder, for --tp above 1 on CUDA), EMBEDSERVE_TP_REDUCE (f32 or bf16:
// the dtype tensor-parallel partial sums are reduced in on CUDA bf16), EMBEDSERVE_TP_SUM (peer or nccl: how CUDA
// ranks sum them), EMBEDSERVE_TP_OVERLAP_TOKENS (the smallest
// tensor-parallel batch run as two overlapped halves; 0 never, for measuring what the overlap gains),
// EMBEDSERVE_TP_GEMM_CHUNKS (1 to 8: pieces of a whole batch's row-parallel GEMMs, each one's all-reduce beside the
// next piece; 1, the default, for one GEMM then its all-reduce),
// EMBEDSERVE_CUBLAS_WORKSPACE_MB (a cuBLAS workspace, for measuring what batch invariance costs) and
// EMBEDSERVE_CPU_GEMM (the CPU's bf16-weight GEMM kernel, for measuring one kernel against another).
Status apply_engine_environment(EngineOptions& options);

// `specs` and --tp (also --tp-size, --tensor-parallel-size) and --nccl-path after them: the tensor-parallel flags
// serve, embed and bench share.
std::vector<FlagSpec> with_tensor_parallel_flags(std::vector<FlagSpec> specs);
// Their values into options; call after apply_engine_environment, so --nccl-path wins over EMBEDSERVE_NCCL_PATH.
Status apply_tensor_parallel_flags(const Flags& flags, EngineOptions& options);

// The hub's variables (HF_HUB_CACHE, HF_HOME, HF_TOKEN, HF_ENDPOINT, HF_HUB_OFFLINE, …; HubEnvironment::names()),
// read from the process environment for resolve_model_path.
HubEnvironment read_hub_environment();

}  // namespace embedserve::cli
