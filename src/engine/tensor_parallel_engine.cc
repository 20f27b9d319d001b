// TensorParallelEngine: the rank threads, their hand-off (one semaphore pair per rank, no lock), and failure handling.
#include "engine/tensor_parallel_engine.h"

#include <string>

#include "engine/checkpoint.h"
#include "model/registry.h"

namespace embedserve {

StatusOr<std::unique_ptr<TensorParallelEngine>> TensorParallelEngine::load(const EngineOptions& options,
                                                                           Device device) {
  const int n = options.tensor_parallel;
  {
    // Refused before any GPU or NCCL is touched: a model whose heads do not divide.
    EMBEDSERVE_ASSIGN_OR_RETURN(Checkpoint checkpoint, open_checkpoint(options));
    EMBEDSERVE_RETURN_IF_ERROR(check_tensor_parallel(checkpoint.config, n));
  }
  ops::GroupOptions go;
  go.device = device;
  go.ranks = n;
  go.nccl_path = options.nccl_path;
  go.peer_reads = options.tp_peer_reads;
  if (device == Device::kCuda) {
    const int visible = ops::visible_gpus();
    if (options.device_ordinal + n > visible)
      return invalid_argument("--tp " + std::to_string(n) + " from GPU " + std::to_string(options.device_ordinal) +
                              " needs GPUs " + std::to_string(options.device_ordinal) + "…" +
                              std::to_string(options.device_ordinal + n - 1) + " but " + std::to_string(visible) +
                              " are visible (CUDA_VISIBLE_DEVICES orders them)");
    for (int r = 0; r < n; ++r) go.ordinals.push_back(options.device_ordinal + r);
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(std::vector<std::shared_ptr<ops::Communicator>> group, ops::create_group(go));

  // Every rank loads its share at once (on CUDA each onto its own GPU): start-up is one rank's load, not N.
  std::vector<StatusOr<std::unique_ptr<ModelEngine>>> loaded;
  for (int r = 0; r < n; ++r) loaded.emplace_back(internal_error("rank not loaded"));
  {
    std::vector<std::thread> loaders;
    for (size_t r = 0; r < static_cast<size_t>(n); ++r)
      loaders.emplace_back([&, r] { loaded[r] = ModelEngine::load(options, device, group[r]); });
    for (std::thread& t : loaders) t.join();
  }
  std::vector<std::unique_ptr<Rank>> ranks;
  for (int r = 0; r < n; ++r) {
    auto& engine = loaded[static_cast<size_t>(r)];
    if (!engine.ok()) return engine.status().with_context("tensor-parallel rank " + std::to_string(r));
    ranks.push_back(std::make_unique<Rank>());
    ranks.back()->engine = std::move(engine).value();
  }

  // One engine to callers: rank 0's description of the model, the memory of all ranks together.
  EngineInfo info = ranks.front()->engine->info();
  info.tensor_parallel = n;
  info.memory_bytes = info.weight_bytes = info.workspace_bytes = 0;
  info.ranks.clear();
  std::string devices;
  for (int r = 0; r < n; ++r) {
    const EngineInfo& ri = ranks[static_cast<size_t>(r)]->engine->info();
    info.memory_bytes += ri.memory_bytes;
    info.weight_bytes += ri.weight_bytes;
    info.workspace_bytes += ri.workspace_bytes;
    info.ranks.push_back(ri.ranks.front());
    devices += "; rank " + std::to_string(r) + ": " + ri.backend + ", " +
               std::to_string((ri.memory_bytes + (1u << 19)) >> 20) + " MiB held";
  }
  info.backend =
      "tensor parallel over " + std::to_string(n) + " ranks (" + group.front()->description() + ")" + devices;
  return std::unique_ptr<TensorParallelEngine>(
      new TensorParallelEngine(std::move(info), std::move(group), std::move(ranks)));
}

TensorParallelEngine::TensorParallelEngine(EngineInfo info, std::vector<std::shared_ptr<ops::Communicator>> group,
                                           std::vector<std::unique_ptr<Rank>> ranks)
    : Engine(std::move(info)), group_(std::move(group)), ranks_(std::move(ranks)) {
  for (size_t r = 0; r < ranks_.size(); ++r) ranks_[r]->thread = std::thread([this, r] { serve(r); });
}

TensorParallelEngine::~TensorParallelEngine() {
  stopping_.store(true);
  for (auto& rank : ranks_) rank->start.release();
  for (auto& rank : ranks_) rank->thread.join();
  // The engines (and their contexts, which hold the communicators) go before group_ lets the communicators go.
  ranks_.clear();
}

void TensorParallelEngine::serve(size_t r) {
  Rank& rank = *ranks_[r];
  for (;;) {
    rank.start.acquire();
    if (stopping_.load()) return;
    rank.result = rank.engine->embed(*batch_, r == 0 ? out_ : std::span<float>(rank.scratch));
    if (!rank.result.ok()) {
      int none = -1;
      first_failure_.compare_exchange_strong(none, static_cast<int>(r));
      // The other ranks may be waiting for this one in a collective it will not reach.
      for (const auto& comm : group_) comm->abort();
    }
    rank.done.release();
  }
}

Status TensorParallelEngine::collect() {
  const int failed = first_failure_.load();
  if (failed < 0) return Status();
  const Status& st = ranks_[static_cast<size_t>(failed)]->result;
  const std::string where = "tensor-parallel rank " + std::to_string(failed) + " (" +
                            ranks_[static_cast<size_t>(failed)]->engine->info().backend + ")";
  bool usable = true;
  for (const auto& comm : group_) usable = comm->reset() && usable;
  if (!usable)
    broken_ = unavailable(where + " failed (" + st.message() + "); the group was aborted and cannot run again: "
                          "restart embedserve");
  return st.with_context(where);
}

Status TensorParallelEngine::run(const SequenceBatch& batch, std::span<float> out) {
  if (!broken_.ok()) return broken_;
  if (batch.chunk && batch.chunk->start == 0) {
    // Every rank's keys and values for the input first: a rank short of memory is an error here, before any rank
    // enters a collective it would wait in.
    for (size_t r = 0; r < ranks_.size(); ++r) {
      const Status st = ranks_[r]->engine->reserve_sequence(batch.chunk->sequence, batch.chunk->total);
      if (st.ok()) continue;
      end_sequence(batch.chunk->sequence);
      return st.with_context("tensor-parallel rank " + std::to_string(r));
    }
  }
  batch_ = &batch;
  out_ = out;
  first_failure_.store(-1);
  for (size_t r = 1; r < ranks_.size(); ++r) ranks_[r]->scratch.resize(out.size());
  for (auto& rank : ranks_) rank->start.release();
  for (auto& rank : ranks_) rank->done.acquire();
  const Status st = collect();
  // A failed chunk leaves its input unfinished on the ranks that did not fail: free it everywhere.
  if (!st.ok() && batch.chunk) end_sequence(batch.chunk->sequence);
  return st;
}

void TensorParallelEngine::end_sequence(uint64_t sequence) {
  for (auto& rank : ranks_) rank->engine->end_sequence(sequence);  // the ranks are idle between calls
}

}  // namespace embedserve
