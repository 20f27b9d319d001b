// EngineOptions: what a caller asks of an engine (model, device, precision, workspace), part of the engine interface.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include "core/types.h"

namespace embedserve {

struct EngineOptions {
  std::filesystem::path model_dir;   // already resolved (weights' resolve_model_path)
  std::string model_id;              // for EngineInfo::model_id (directory name or hub id)
  std::optional<Device> device;      // nullopt: auto (CUDA when built in and a GPU is visible, else the CPU)
  int device_ordinal = 0;            // which GPU, in CUDA_VISIBLE_DEVICES order (with tensor_parallel: the first)
  // Tensor parallelism (--tp): one engine over this many ranks, GPUs device_ordinal … device_ordinal + N − 1 (or
  // rank threads on the CPU), each holding 1/N of every layer's heads and MLP columns.
  int tensor_parallel = 1;
  // CUDA with tensor_parallel > 1 (--nccl-path, EMBEDSERVE_NCCL_PATH): libnccl.so.2 or its folder; empty: the
  // loader's path, CUDA's folder, then pip's nvidia/nccl/lib and nvidia/cu13/lib.
  std::string nccl_path;
  // CUDA bf16 with tensor_parallel > 1 (EMBEDSERVE_TP_REDUCE=bf16|f32): the dtype o_proj's and down_proj's
  // partial sums cross the link in. bf16 (the default, as vLLM and SGLang do) moves half the bytes and rounds each
  // partial and the sum: on the 8B over two H200s the mean (1 − cos) against transformers f32 is 1.07 × one GPU's
  // and one 2,048-token input 0.58 × its latency; f32 rounds once, as one GPU does (1.00 ×), and is slower
  // (docs/PERFORMANCE.md, "Tensor parallelism").
  DType tp_reduce_dtype = DType::kBF16;
  // CUDA with tensor_parallel > 1 (EMBEDSERVE_TP_SUM=peer|nccl): sum by peer reads (one kernel per rank reads the
  // other GPUs' partials over NVLink; no overlap modes then) where every pair of GPUs has peer access, else NCCL.
  bool tp_peer_reads = true;
  // tensor_parallel > 1 (EMBEDSERVE_TP_OVERLAP_TOKENS): a batch of at least this many tokens runs each layer as two
  // halves of its rows, one half's all-reduce beside the other's GEMMs; 0 runs every batch whole. 4,096: on the 8B
  // over two H200s halves gain 3 % at 16,384-token batches and lose 3 % at 2,048 tokens (docs/PERFORMANCE.md).
  size_t tp_overlap_tokens = 4096;
  // tensor_parallel > 1 (EMBEDSERVE_TP_GEMM_CHUNKS, 1 to 8): batches run whole do o_proj and down_proj in this many
  // pieces of rows, each piece's all-reduce beside the next piece's GEMM. 1 (the default, until measured on the
  // GPU machine): one GEMM, then its all-reduce.
  int tp_gemm_chunks = 1;
  // auto and bf16: bf16 compute on CUDA, bf16 weights with f32 activations on the CPU; f32: f32 throughout.
  Precision precision = Precision::kAuto;
  // --quantization: fp8 quantises GEMM weights to e4m3 at load (per output channel) and activations per token.
  // An FP8 checkpoint (config.json's quantization_config) turns it on by itself, as in SGLang and vLLM.
  Quantization quantization = Quantization::kNone;
  // CPU bf16 weights: the GEMM kernel (avx512bf16, avx512, avx2, portable); empty for the fastest the CPU runs.
  // Read by cli/ from EMBEDSERVE_CPU_GEMM.
  std::string cpu_gemm_kernel;
  int threads = 0;                   // CPU threads; 0: all cores
  // Rows the workspace is sized for: the largest batch or chunk embed() accepts. Callers set it to the largest
  // call their scheduler makes (scheduler.h's workspace_tokens_for: the batch budget, a chunk, or an input just
  // short of the chunking threshold), not to the context: longer inputs arrive in chunks.
  size_t workspace_tokens = 16384;
  // The longest input the caller may send (its context length). An engine that takes inputs in chunks holds it
  // in workspace_tokens; one that cannot (pooling other than the last token's) grows its workspace to hold it
  // whole. 0: workspace_tokens bounds every input.
  size_t longest_input_tokens = 0;
  // CUDA only, read from the environment by cli/ (EMBEDSERVE_CUBLAS_PATH, EMBEDSERVE_CUBLAS_WORKSPACE_MB):
  std::string cublas_path;           // libcublas.so.13 or its folder; empty: the loader's path, then CUDA's folder
  size_t cublas_workspace_bytes = 0; // 0 keeps split-K out, so a row's bits never depend on its batch
  bool tune_gemms = true;            // EMBEDSERVE_GEMM_TUNING=0: cublasGemmEx's pick instead of the fastest kernel
  // CUDA: batches of at most this many tokens replay a CUDA graph recorded for their shape; 0 turns graphs off.
  size_t graph_max_tokens = 1024;
};

}  // namespace embedserve
