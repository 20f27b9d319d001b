// DeviceContext creation for each backend, and the scoped device selection the engine holds while it works.
#include "ops/context.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <string>

#include "ops/cpu/cpu_state.h"
#include "ops/cpu/kernels.h"
#if defined(EMBEDSERVE_HAVE_CUDA)
#include <cuda_runtime.h>

#include "ops/cuda/cuda_context.h"
#include "ops/cuda/cuda_device.h"
#include "ops/cuda/cuda_memory.h"
#endif

namespace embedserve::ops {
namespace {

StatusOr<cpu::Bf16Kernel> cpu_gemm_kernel(const std::string& name) {
  if (name.empty()) return cpu::best_bf16_kernel();
  const std::pair<const char*, cpu::Bf16Kernel> known[] = {{"avx512bf16", cpu::Bf16Kernel::kAvx512Bf16},
                                                           {"avx512", cpu::Bf16Kernel::kAvx512},
                                                           {"avx2", cpu::Bf16Kernel::kAvx2},
                                                           {"portable", cpu::Bf16Kernel::kPortable}};
  for (const auto& [n, kernel] : known) {
    if (name != n) continue;
    if (!cpu::bf16_kernel_supported(kernel))
      return invalid_argument("EMBEDSERVE_CPU_GEMM=" + name + ": this CPU lacks the instructions; leave it unset for the fastest kernel it runs");
    return kernel;
  }
  return invalid_argument("EMBEDSERVE_CPU_GEMM must be avx512bf16, avx512, avx2 or portable, got '" + name + "'");
}

}  // namespace

DeviceContext::~DeviceContext() = default;

StatusOr<std::unique_ptr<DeviceContext>> DeviceContext::create(const ContextOptions& options) {
  std::unique_ptr<DeviceContext> ctx(new DeviceContext());
  ctx->device_ = options.device;
  ctx->ordinal_ = options.ordinal;
  if (options.communicator && options.communicator->device() != options.device)
    return internal_error("a context's communicator must belong to its device's backend");
  ctx->communicator_ = options.communicator;
  ctx->tp_overlap_tokens_ = options.tp_overlap_tokens;
  if (options.tp_gemm_chunks < 1 || options.tp_gemm_chunks > 8)
    return invalid_argument("tensor-parallel GEMM pieces must be 1 to 8 (EMBEDSERVE_TP_GEMM_CHUNKS)");
  ctx->tp_gemm_chunks_ = options.tp_gemm_chunks;
  if (options.tp_reduce_dtype != DType::kF32 && options.tp_reduce_dtype != DType::kBF16)
    return invalid_argument("tensor-parallel partial sums are reduced in f32 or bf16");
  if (options.device == Device::kCpu) {
    if (options.threads < 0) return invalid_argument("--threads must be 0 (every core) or more");
    // OpenBLAS and OpenMP keep one thread count per process: every CPU context of a process shares it.
    cpu::configure_blas(options.threads);
    ctx->dtype_ = DType::kF32;
    const std::string threads = std::to_string(cpu::blas_threads()) + " threads";
    if (options.quantization == Quantization::kFp8) {
      // The same arithmetic as the GPU's FP8 GEMMs (activations rounded to e4m3 per row, exact products, f32
      // sums, both scales after), so CI tests the whole fp8 path; a test mode, not a fast one.
      ctx->weight_dtype_ = DType::kF8E4M3;
      ctx->description_ = "cpu, fp8-e4m3 weights (per-channel scales), f32 activations quantised per token, " + threads;
    } else if (options.precision == Precision::kF32) {
      ctx->weight_dtype_ = DType::kF32;
      ctx->description_ = "cpu, f32 weights and activations, " + threads + ", OpenBLAS " + cpu::blas_core_name() +
                          " kernels" +
                          (cpu::blas_rows_independent(4096, 4096) ? "" : " (one GEMM per input: these kernels round rows by batch)");
    } else {
      EMBEDSERVE_ASSIGN_OR_RETURN(const cpu::Bf16Kernel kernel, cpu_gemm_kernel(options.cpu_gemm_kernel));
      ctx->weight_dtype_ = DType::kBF16;
      ctx->backend_ = std::make_unique<cpu::CpuState>(kernel);
      ctx->description_ = "cpu, bf16 weights, f32 activations, " + threads + ", GEMMs: " + cpu::bf16_kernel_name(kernel);
    }
    return ctx;
  }
#if defined(EMBEDSERVE_HAVE_CUDA)
  ctx->dtype_ = options.precision == Precision::kF32 ? DType::kF32 : DType::kBF16;
  ctx->weight_dtype_ = ctx->dtype_;
  if (options.quantization == Quantization::kFp8) {
    if (ctx->dtype_ != DType::kBF16)
      return invalid_argument("--quantization fp8 on CUDA computes in bf16 around its FP8 GEMMs; drop --dtype float32");
    ctx->weight_dtype_ = DType::kF8E4M3;
  }
  ctx->reduce_dtype_ = ctx->dtype_ == DType::kF32 ? DType::kF32 : options.tp_reduce_dtype;
  // Capped so token counts fit the graph keys' 20 bits. The f32 parity mode records none: it runs one SGEMM per
  // sequence (ops::linear), so a graph would hold one batch's sequence lengths and replay them for a later batch
  // of the same shape cut elsewhere, rounding that batch's rows by other row counts (on the 4B, 17 of 46 texts
  // lost their bits alone against in a batch). Its launches are a small share of its time anyway.
  ctx->graph_max_tokens_ =
      ctx->dtype_ == DType::kF32 ? 0 : std::min<size_t>(options.graph_max_tokens, (size_t{1} << 19) - 1);
  std::string where;
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<cuda_backend::CudaState> state, cuda_backend::create_state(options, &where));
  ctx->backend_ = std::move(state);
  ctx->description_ = where + ", " + dtype_name(ctx->dtype_) + " compute" +
                      (ctx->weight_dtype_ == DType::kF8E4M3
                           ? ", fp8-e4m3 GEMMs (cuBLASLt; per-channel weight and per-token activation scales)"
                           : "");
  return ctx;
#else
  return unimplemented("this embedserve was built without the CUDA backend (EMBEDSERVE_CUDA=OFF); use --device cpu");
#endif
}

Status DeviceContext::synchronize() const {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (device_ == Device::kCuda) return cuda_backend::synchronize(*this);
#endif
  return Status();
}

int visible_gpus() {
#if defined(EMBEDSERVE_HAVE_CUDA)
  auto devices = cuda::list_devices();  // a broken driver counts as none: auto falls back to the CPU
  return devices.ok() ? static_cast<int>(devices->size()) : 0;
#else
  return 0;
#endif
}

std::vector<GpuMemory> gpu_memory() {
  std::vector<GpuMemory> out;
#if defined(EMBEDSERVE_HAVE_CUDA)
  auto devices = cuda::list_devices();
  if (!devices.ok()) return out;
  for (const cuda::DeviceProperties& d : *devices)
    out.push_back({d.index, d.name, d.total_memory_bytes, d.free_memory_bytes});
#endif
  return out;
}

namespace {

// The first number in `path`, or nothing (no such file, or "max": no limit).
std::optional<size_t> read_number(const char* path) {
  std::ifstream f(path);
  size_t v = 0;
  if (f >> v) return v;
  return std::nullopt;
}

// What a container's memory limit still allows (cgroup v2 memory.max, else v1 memory.limit_in_bytes, less the
// usage), when one is set: MemAvailable describes the host, and a container killed at its limit gets no message.
std::optional<size_t> cgroup_headroom() {
  auto limit = read_number("/sys/fs/cgroup/memory.max");
  auto usage = read_number("/sys/fs/cgroup/memory.current");
  if (!limit) {
    limit = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    usage = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  if (!limit || *limit >= (size_t{1} << 60)) return std::nullopt;  // v1 writes "no limit" as ~2^63
  return *limit > usage.value_or(0) ? *limit - usage.value_or(0) : 0;
}

}  // namespace

StatusOr<size_t> available_memory(const DeviceContext& ctx) {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() == Device::kCuda) return cuda_backend::free_memory(ctx.ordinal());
#endif
  (void)ctx;
  std::ifstream meminfo("/proc/meminfo");
  std::string key, unit;
  size_t kib = 0;
  while (meminfo >> key >> kib >> unit) {
    if (key != "MemAvailable:") continue;
    const size_t host = kib * 1024;
    const auto container = cgroup_headroom();
    return container ? std::min(host, *container) : host;
  }
  return unavailable("/proc/meminfo has no MemAvailable line");
}

bool cuda_built() {
#if defined(EMBEDSERVE_HAVE_CUDA)
  return true;
#else
  return false;
#endif
}

ScopedDevice::ScopedDevice(const DeviceContext& ctx) {
  if (ctx.device() == Device::kCpu) cpu::use_configured_threads();
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (ctx.device() == Device::kCuda) status_ = cuda_backend::set_device(ctx.ordinal(), &previous_);
#endif
}

ScopedDevice::~ScopedDevice() {
#if defined(EMBEDSERVE_HAVE_CUDA)
  if (previous_ >= 0) cudaSetDevice(previous_);
#endif
}

}  // namespace embedserve::ops
