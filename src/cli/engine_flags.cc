// Parsing of --device and --dtype, and the engine's environment variables.
#include "cli/engine_flags.h"

#include <cstdlib>

namespace embedserve::cli {

StatusOr<std::optional<Device>> parse_device(const std::string& value) {
  if (value == "auto") return std::optional<Device>();
  if (value == "cpu") return std::optional<Device>(Device::kCpu);
  if (value == "cuda") return std::optional<Device>(Device::kCuda);
  return invalid_argument("--device must be auto, cpu or cuda, got '" + value + "'");
}

StatusOr<Precision> parse_precision(const std::string& value) {
  if (value == "auto") return Precision::kAuto;
  if (value == "f32" || value == "float32" || value == "float") return Precision::kF32;
  if (value == "bf16" || value == "bfloat16") return Precision::kBF16;
  return invalid_argument("--dtype must be auto, f32 or bf16, got '" + value + "'");
}

StatusOr<Quantization> parse_quantization(const std::string& value) {
  if (value.empty() || value == "none") return Quantization::kNone;
  if (value == "fp8") return Quantization::kFp8;
  return invalid_argument("--quantization " + value + " is not supported; embedserve quantises to fp8 "
                          "(--quantization fp8) and reads FP8 checkpoints");
}

Status apply_engine_environment(EngineOptions& options) {
  if (const char* path = std::getenv("EMBEDSERVE_CUBLAS_PATH"); path && *path) options.cublas_path = path;
  if (const char* kernel = std::getenv("EMBEDSERVE_CPU_GEMM"); kernel && *kernel) options.cpu_gemm_kernel = kernel;
  if (const char* mb = std::getenv("EMBEDSERVE_CUBLAS_WORKSPACE_MB"); mb && *mb) {
    char* end = nullptr;
    const unsigned long long v = std::strtoull(mb, &end, 10);
    if (*end != '\0' || v > (1ull << 20))
      return invalid_argument("EMBEDSERVE_CUBLAS_WORKSPACE_MB must be a whole number of MiB, got '" + std::string(mb) + "'");
    options.cublas_workspace_bytes = static_cast<size_t>(v) << 20;
  }
  return Status();
}

HubEnvironment read_hub_environment() {
  HubEnvironment env;
  for (const std::string& name : HubEnvironment::names())
    if (const char* v = std::getenv(name.c_str()); v && *v) env.values[name] = v;
  return env;
}

}  // namespace embedserve::cli
