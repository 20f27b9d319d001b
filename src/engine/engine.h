// Engine: a model on a device. The one interface the scheduler, server and CLI use to embed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "engine/batch.h"

namespace embedserve {

// One rank of an engine (the only one without tensor parallelism): where it runs and what it holds there.
struct EngineRank {
  Device device = Device::kCpu;
  int ordinal = 0;          // its GPU, in CUDA_VISIBLE_DEVICES order (0 on the CPU)
  size_t memory_bytes = 0;  // the weights and workspace it holds on that device
};

// What callers need to know about a loaded model, backend-neutral.
struct EngineInfo {
  std::string model_id;           // the directory name or hub id it came from
  std::string architecture;       // "Qwen3Model"
  std::string dtype;              // weights as stored: "bf16", "f16", "f32"
  std::string weights_dtype;      // GEMM weights as held in memory: "bf16" (CPU default, CUDA bf16), "f32" or "fp8-e4m3"
  Quantization quantization = Quantization::kNone;  // fp8: --quantization fp8 or an FP8 checkpoint
  Device device = Device::kCpu;
  Precision precision = Precision::kF32;  // what the engine computes in (never kAuto once loaded)
  std::string backend;            // device, precision and libraries, for logs: "cuda:0 NVIDIA H200, cuBLAS …, bf16 compute"
  int hidden_size = 0;            // the length of every output vector
  int vocab_size = 0;             // rows of the embedding table: valid ids are [0, vocab_size)
  int max_position_embeddings = 0;
  Pooling pooling = Pooling::kLastToken;
  bool normalize = true;          // L2-normalise the pooled vector (sentence-transformers' Normalize module)
  size_t memory_bytes = 0;        // weights + workspace held by the engine
  size_t weight_bytes = 0;        // of which the weights (every one a copy: the checkpoint is not mapped after load)
  size_t workspace_bytes = 0;     // and the activations' workspace, sized for workspace_tokens
  // The largest SequenceBatch::num_tokens() embed() accepts: the rows its workspace was sized for. Not the
  // scheduler's batch budget (--max-num-batched-tokens), which may be smaller: one input longer than the
  // budget but within the context length still runs, alone.
  size_t workspace_tokens = 0;
  // Whether embed() takes an input in chunks (SequenceBatch::chunk), each at most workspace_tokens long: the
  // model keeps a sequence's keys and values between chunks. Needs a pooling that reads the last chunk alone
  // (last token); an engine without it takes each input whole.
  bool chunked_prefill = false;
  // Ranks the model is split over (--tp): memory_bytes and the others above are their sum, `ranks` has each one's
  // GPU and memory, and backend names them too.
  int tensor_parallel = 1;
  std::vector<EngineRank> ranks;
  // Where loading went, in seconds (rank 0's for a split model): making the device context (on CUDA the driver's
  // context, cuBLAS and its handle), opening the checkpoint (config, index, mapping), and the weights' copies with
  // the workspace's allocation. For the start-up line: which part a cold start should shorten.
  struct LoadTimes {
    double device = 0, checkpoint = 0, weights = 0, graphs = 0;  // graphs: record_query_graphs
  } load_times;
  // One 16-token query's engine call, its recorded graph replayed, as timed at load (0 where no graphs record: the
  // CPU, tensor-parallel ranks). How long a server thread that handed a query on waits for its answer.
  double query_seconds = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineInfo& info() const { return info_; }

  // Embeds every sequence of `batch` into `out`, float32 [n_seqs, hidden_size] row-major:
  // pooled (info().pooling) and, when info().normalize, L2-normalised.
  // Validates before any backend sees the batch, so no backend can skip it:
  //   - every id in [0, vocab_size) — Qwen3's tokenizer has ids past the 4B/8B embedding table;
  //   - no empty sequence, none longer than max_position_embeddings, total ≤ workspace_tokens;
  //   - out.size() == n_seqs * hidden_size.
  // A sequence's vector depends on that sequence alone, never on the rest of the batch.
  // A chunk (batch.chunk set; needs info().chunked_prefill) is the batch's one sequence; it starts the input at
  // start 0, else continues it exactly where its previous chunk ended. `out` holds one row, written at the
  // input's last chunk only. The input's keys and values are freed at its last chunk, when a chunk fails, or by
  // end_sequence(); a chunk at start 0 under a name in use starts over.
  // Not thread-safe: one caller at a time (the scheduler's batcher thread).
  Status embed(const SequenceBatch& batch, std::span<float> out);
  // embed()'s checks alone. An error here is the batch's fault (a bad input, or a scheduler bug); an error from
  // embed() after validate() passed is the engine's (a CUDA error, a lost device), which is how the scheduler
  // tells a request to refuse from a replica to take out of rotation. Thread-safe (reads info() only).
  Status validate(const SequenceBatch& batch, std::span<const float> out) const;

  // Frees what an input in progress holds (its keys and values); nothing when `sequence` names none.
  virtual void end_sequence(uint64_t sequence) { (void)sequence; }
  // Inputs whose chunks have begun and not ended (for tests and metrics).
  virtual size_t sequences_in_progress() const { return 0; }

 protected:
  explicit Engine(EngineInfo info) : info_(std::move(info)) {}
  // The backend's forward pass; `batch` and `out` are already validated.
  virtual Status run(const SequenceBatch& batch, std::span<float> out) = 0;

  EngineInfo info_;
};

}  // namespace embedserve
