// ModelEngine: a model on one device behind the Engine interface; the same class for the CPU and CUDA, which
// differ only in the DeviceContext it creates.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_map>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/engine_factory.h"
#include "model/embedding_model.h"
#include "ops/context.h"

namespace embedserve {

class ModelEngine final : public Engine {
 public:
  // Creates the context for `device` (threads, or stream and cuBLAS on GPU options.device_ordinal), opens the
  // checkpoint and loads the model family config.json names onto it, with its workspace for
  // options.workspace_tokens tokens.
  // With `communicator` (one rank of a tensor-parallel group) it loads that rank's share of the model on GPU
  // options.device_ordinal + rank, without recorded CUDA graphs (see docs/ARCHITECTURE.md).
  static StatusOr<std::unique_ptr<ModelEngine>> load(const EngineOptions& options, Device device,
                                                     std::shared_ptr<ops::Communicator> communicator = nullptr);

  // Allocates the keys and values of an input about to be embedded in chunks (its chunk at start 0 then uses
  // them), replacing any it had: lets a tensor-parallel group find out that one rank lacks the memory before any
  // rank starts the chunk (a rank failing inside a collective would leave the others waiting).
  Status reserve_sequence(uint64_t sequence, size_t total);

  // For debugging tools (the intermediates dump of `embed`); not part of the Engine interface.
  EmbeddingModel& model() { return *model_; }
  const ops::DeviceContext& context() const { return *ctx_; }

  void end_sequence(uint64_t sequence) override;
  size_t sequences_in_progress() const override { return sequences_.size(); }

 protected:
  Status run(const SequenceBatch& batch, std::span<float> out) override;

 private:
  // One chunk of a longer input, through the model's cache of the input's keys and values.
  Status run_chunk(const SequenceBatch& batch, std::span<float> out);

  ModelEngine(EngineInfo info, std::unique_ptr<ops::DeviceContext> ctx, std::unique_ptr<EmbeddingModel> model)
      : Engine(std::move(info)), ctx_(std::move(ctx)), model_(std::move(model)) {}

  // The model uses the context, so it goes first. No mapping of the checkpoint is kept: every weight is a copy.
  std::unique_ptr<ops::DeviceContext> ctx_;
  std::unique_ptr<EmbeddingModel> model_;
  // Inputs between their first and last chunk, by SequenceChunk::sequence (on the context's device).
  std::unordered_map<uint64_t, std::unique_ptr<SequenceCache>> sequences_;
};

}  // namespace embedserve
