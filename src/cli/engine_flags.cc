// Parsing of --device and --dtype, and the engine's environment variables.
#include "cli/engine_flags.h"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

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

Status apply_engine_flags(const Flags& flags, EngineOptions& options) {
  EMBEDSERVE_ASSIGN_OR_RETURN(options.device, parse_device(flags.get_or("device", "auto")));
  EMBEDSERVE_ASSIGN_OR_RETURN(options.precision, parse_precision(flags.get_or("dtype", "auto")));
  EMBEDSERVE_ASSIGN_OR_RETURN(options.quantization, parse_quantization(flags.get_or("quantization", "")));
  return Status();
}

namespace {

// A whole-number environment variable in [min, max]; nullopt where it is unset or empty. The error names the
// variable, says what it must be (`what`) and quotes the value given.
StatusOr<std::optional<uint64_t>> whole_number_env(const char* name, uint64_t min, uint64_t max, const char* what) {
  const char* text = std::getenv(name);
  if (!text || !*text) return std::optional<uint64_t>();
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (*end != '\0' || v < min || v > max)
    return invalid_argument(std::string(name) + " must be " + what + ", got '" + text + "'");
  return std::optional<uint64_t>(v);
}

}  // namespace

Status apply_engine_environment(EngineOptions& options) {
  if (const char* path = std::getenv("EMBEDSERVE_CUBLAS_PATH"); path && *path) options.cublas_path = path;
  if (const char* path = std::getenv("EMBEDSERVE_NCCL_PATH"); path && *path) options.nccl_path = path;
  EMBEDSERVE_ASSIGN_OR_RETURN(const auto tune,
                              whole_number_env("EMBEDSERVE_GEMM_TUNING", 0, 1,
                                               "1 (the default: each GEMM shape runs the fastest of cuBLAS's kernels "
                                               "that split no sums) or 0 (cublasGemmEx's own pick)"));
  if (tune) options.tune_gemms = *tune == 1;
  if (const char* reduce = std::getenv("EMBEDSERVE_TP_REDUCE"); reduce && *reduce) {
    const std::string r = reduce;
    if (r != "f32" && r != "bf16")
      return invalid_argument("EMBEDSERVE_TP_REDUCE must be bf16 (the default: half the bytes between GPUs) or f32 "
                              "(partial sums rounded once), got '" + r + "'");
    options.tp_reduce_dtype = r == "f32" ? DType::kF32 : DType::kBF16;
  }
  if (const char* sum = std::getenv("EMBEDSERVE_TP_SUM"); sum && *sum) {
    const std::string v = sum;
    if (v != "peer" && v != "nccl")
      return invalid_argument("EMBEDSERVE_TP_SUM must be peer (the default: each GPU reads the others' partial sums "
                              "over their links, where every pair has peer access) or nccl (NCCL's all-reduce), got '" +
                              v + "'");
    options.tp_peer_reads = v == "peer";
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(const auto overlap, whole_number_env("EMBEDSERVE_TP_OVERLAP_TOKENS", 0, 1ull << 30,
                                                                   "a whole number of tokens (0: batches run whole)"));
  if (overlap) options.tp_overlap_tokens = static_cast<size_t>(*overlap);
  EMBEDSERVE_ASSIGN_OR_RETURN(const auto pieces,
                              whole_number_env("EMBEDSERVE_TP_GEMM_CHUNKS", 1, 8,
                                               "1 to 8 (pieces of o_proj's and down_proj's rows whose all-reduces "
                                               "overlap the next piece)"));
  if (pieces) options.tp_gemm_chunks = static_cast<int>(*pieces);
  if (const char* kernel = std::getenv("EMBEDSERVE_CPU_GEMM"); kernel && *kernel) options.cpu_gemm_kernel = kernel;
  EMBEDSERVE_ASSIGN_OR_RETURN(const auto mib,
                              whole_number_env("EMBEDSERVE_CUBLAS_WORKSPACE_MB", 0, 1ull << 20, "a whole number of MiB"));
  if (mib) options.cublas_workspace_bytes = static_cast<size_t>(*mib) << 20;
  return Status();
}

std::vector<FlagSpec> with_tensor_parallel_flags(std::vector<FlagSpec> specs) {
  specs.insert(specs.end(), {
      {"tp", "N", "tensor parallelism: split the model over N GPUs (--base-gpu-id onwards; with --device cpu, N rank "
                  "threads), each holding 1/N of every layer's heads and MLP, with one all-reduce after the attention "
                  "and one after the MLP; N must divide the model's attention and key/value heads (0.6B, 4B, 8B: 1, "
                  "2, 4 or 8). Above 1 on CUDA it needs NCCL (see --nccl-path)", "1", false,
       {"tp-size", "tensor-parallel-size"}},
      {"nccl-path", "PATH", "libnccl.so.2 or its folder, for --tp above 1 on CUDA (default: EMBEDSERVE_NCCL_PATH, "
                            "else the loader's path, CUDA's folder and pip's nvidia/nccl/lib or nvidia/cu13/lib)", ""},
  });
  return specs;
}

Status apply_tensor_parallel_flags(const Flags& flags, EngineOptions& options) {
  EMBEDSERVE_ASSIGN_OR_RETURN(const long long tp, flags.get_int("tp", 1, 1, 64));
  options.tensor_parallel = static_cast<int>(tp);
  if (auto path = flags.get("nccl-path"); path && !path->empty()) options.nccl_path = *path;
  return Status();
}

HubEnvironment read_hub_environment() {
  HubEnvironment env;
  for (const std::string& name : HubEnvironment::names())
    if (const char* v = std::getenv(name.c_str()); v && *v) env.values[name] = v;
  return env;
}

}  // namespace embedserve::cli
