// DeviceContext: the device an engine's ops run on (ordinal, stream, BLAS handle, workspace), made by the engine
// and passed to every op. No op or model code keeps device state of its own or reads the environment.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "ops/communicator.h"

namespace embedserve::ops {

// What a backend keeps per context (CUDA: the stream, the cuBLAS handle and its workspace). Defined by each
// backend; the rest of the code sees only DeviceContext.
class BackendState {
 public:
  virtual ~BackendState() = default;
};

struct ContextOptions {
  Device device = Device::kCpu;
  int ordinal = 0;                    // which GPU, in CUDA_VISIBLE_DEVICES order
  // auto and bf16: bf16 compute on CUDA; on the CPU, bf16 weights (as stored) with f32 activations. f32: f32
  // throughout (the parity mode; the CPU then widens every weight to f32 at load).
  Precision precision = Precision::kAuto;
  // fp8: GEMM weights are e4m3 with a scale per output channel (weight_dtype() kF8E4M3), activations quantised
  // per token inside ops::linear; everything else keeps `precision`. CUDA needs bf16 compute for it.
  Quantization quantization = Quantization::kNone;
  int threads = 0;                    // CPU: OpenMP/OpenBLAS threads, 0 for every core
  // CPU bf16 weights: the GEMM kernel, by name (avx512bf16, avx512, avx2, portable); empty for the fastest this
  // CPU runs. For measuring one kernel against another on one machine; a kernel the CPU lacks is an error.
  std::string cpu_gemm_kernel;
  std::string cublas_path;            // CUDA: libcublas.so.13 or its folder; empty for the default places
  size_t cublas_workspace_bytes = 0;  // CUDA: 0 keeps split-K out (rows' bits independent of the batch)
  // CUDA, bf16, no cuBLAS workspace: in bulk batches each GEMM shape runs the fastest of cuBLAS's kernels that split
  // no sums, timed on the first call of each row bucket (ops/cuda/tuned_gemm.h); false: cublasGemmEx's own pick.
  bool tune_gemms = true;
  // CUDA: batches of at most this many tokens replay a recorded CUDA graph of their shape instead of launching
  // each kernel (launch overhead dominates small batches); 0 turns graphs off, as does f32 compute (the parity
  // mode's per-sequence GEMMs would be baked into a graph). At most graph_cache_size
  // graphs are kept, least recently used first out. Capped below 2^19 tokens (model/qwen3.cc's graph keys).
  size_t graph_max_tokens = 1024;
  size_t graph_cache_size = 256;
  // Tensor parallelism: this context's rank in its group (ops/communicator.h), which ops::all_reduce sums over
  // and the model shards its weights by. None: one rank.
  std::shared_ptr<Communicator> communicator;
  // Tensor parallelism on a bf16 context: the dtype o_proj's and down_proj's partial sums are all-reduced in. f32
  // (the default) rounds the sum once, as one GPU does; bf16 halves the bytes on the link and rounds each partial
  // and the sum (EMBEDSERVE_TP_REDUCE). f32 contexts always reduce in f32.
  DType tp_reduce_dtype = DType::kF32;
  // Tensor parallelism: batches of at least this many tokens run in two halves whose all-reduces overlap the other
  // half's compute (model/qwen3.cc says how); 0: never.
  size_t tp_overlap_tokens = 4096;
  // Tensor parallelism, batches run whole: o_proj's and down_proj's GEMMs in this many pieces of rows (1 to 8), each
  // piece's all-reduce beside the next piece's GEMM; 1: one GEMM, then its all-reduce.
  int tp_gemm_chunks = 1;
};

class DeviceContext {
 public:
  // Creates the context: the CPU's thread settings, or a CUDA stream and cuBLAS handle on GPU `ordinal`.
  // Errors say what is missing (no GPU, no cuBLAS, a precision the device lacks) and which flag helps.
  static StatusOr<std::unique_ptr<DeviceContext>> create(const ContextOptions& options);
  ~DeviceContext();
  DeviceContext(const DeviceContext&) = delete;
  DeviceContext& operator=(const DeviceContext&) = delete;

  Device device() const { return device_; }
  int ordinal() const { return ordinal_; }
  // The element type of this context's activations and of the weights elementwise ops read (norm scales):
  // f32, or bf16 on CUDA.
  DType dtype() const { return dtype_; }
  // The element type of GEMM weights (matrices): dtype(), except on a CPU bf16 context, where weights stay bf16
  // (half the memory and bandwidth) while activations are f32, and kF8E4M3 under fp8 quantisation.
  DType weight_dtype() const { return weight_dtype_; }
  // bf16 when the weights or the compute are bf16 (what --dtype chose), else f32.
  Precision precision() const {
    return weight_dtype_ == DType::kBF16 || dtype_ == DType::kBF16 ? Precision::kBF16 : Precision::kF32;
  }
  Quantization quantization() const {
    return weight_dtype_ == DType::kF8E4M3 ? Quantization::kFp8 : Quantization::kNone;
  }
  // Device, precision and libraries, for the start-up log ("cuda:0 NVIDIA H200, bf16, cuBLAS /path …").
  const std::string& description() const { return description_; }
  // Waits until every op issued on this context has finished (a no-op on the CPU, where ops are synchronous).
  Status synchronize() const;

  // Whether a batch of this many tokens should run as a recorded graph (see run_recorded in ops/graph.h).
  bool records(size_t tokens) const { return tokens <= graph_max_tokens_; }
  size_t graph_max_tokens() const { return graph_max_tokens_; }  // 0: this context records none

  BackendState* backend() const { return backend_.get(); }

  // Tensor parallelism: the group this context is one rank of (nullptr: alone), its rank and the group's size.
  Communicator* communicator() const { return communicator_.get(); }
  int rank() const { return communicator_ ? communicator_->rank() : 0; }
  int world_size() const { return communicator_ ? communicator_->size() : 1; }
  // The dtype partial sums are all-reduced in (ContextOptions::tp_reduce_dtype; the context's dtype or f32).
  DType reduce_dtype() const { return reduce_dtype_; }
  // Whether a batch of this many tokens runs its layers in two overlapped halves (ContextOptions::tp_overlap_tokens;
  // never alone, nor in a group that reads peers: its sums are not started in the background).
  bool overlaps(size_t tokens) const {
    return world_size() > 1 && !communicator_->reads_peers() && tp_overlap_tokens_ > 0 && tokens >= tp_overlap_tokens_;
  }
  // Pieces a whole batch's row-parallel GEMMs run in with several ranks (ContextOptions::tp_gemm_chunks; 1 in a
  // group that reads peers).
  int tp_gemm_chunks() const { return communicator_ && communicator_->reads_peers() ? 1 : tp_gemm_chunks_; }

 private:
  DeviceContext() = default;
  Device device_ = Device::kCpu;
  int ordinal_ = 0;
  DType dtype_ = DType::kF32;
  DType weight_dtype_ = DType::kF32;
  size_t graph_max_tokens_ = 0;
  std::string description_;
  std::unique_ptr<BackendState> backend_;
  std::shared_ptr<Communicator> communicator_;
  DType reduce_dtype_ = DType::kF32;
  size_t tp_overlap_tokens_ = 0;
  int tp_gemm_chunks_ = 1;
};

// How many CUDA devices this process sees (0 in a build without CUDA, or with no driver or GPU): what
// `--device auto` decides on.
int visible_gpus();
// Whether this build has the CUDA backend at all (EMBEDSERVE_CUDA).
bool cuda_built();

// A visible GPU's name and memory, for serve's start-up line, /info and /metrics.
struct GpuMemory {
  int ordinal = 0;  // in CUDA_VISIBLE_DEVICES order
  std::string name;
  size_t total_bytes = 0;
  size_t free_bytes = 0;  // cudaMemGetInfo's, over every process on it
};
// Every visible GPU now (empty in a build without CUDA, or with no driver, no GPU or a driver error).
std::vector<GpuMemory> gpu_memory();

// Memory a new allocation on ctx's device can still get: on the CPU the kernel's MemAvailable (free memory plus
// what it can reclaim, such as clean page cache), or less where a container's cgroup limit leaves less; on a GPU
// cudaMemGetInfo's free bytes. What the engine checks a
// model's needs against before loading it, so a model that cannot fit is a message, not std::bad_alloc.
StatusOr<size_t> available_memory(const DeviceContext& ctx);

// Makes the context's device current on the calling thread for its lifetime and restores the previous one after
// (CUDA's current device is per host thread; the thread that loads an engine is not the one that runs it). On the
// CPU it gives the calling thread the configured OpenMP thread count, which is per thread too.
// The engine holds one around loading and around each batch; ops and the model never select a device.
class ScopedDevice {
 public:
  explicit ScopedDevice(const DeviceContext& ctx);
  ~ScopedDevice();
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;
  const Status& status() const { return status_; }

 private:
  int previous_ = -1;
  Status status_;
};

}  // namespace embedserve::ops
