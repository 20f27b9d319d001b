// ModelEngine: context, checkpoint and model wired together; each batch runs with the context's device selected.
#include "engine/model_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "model/pooling.h"
#include "model/registry.h"
#include "ops/graph.h"

namespace embedserve {

namespace {

std::string human_bytes(size_t bytes) {
  char buf[32];
  if (bytes < (1ull << 30)) std::snprintf(buf, sizeof(buf), "%.0f MiB", static_cast<double>(bytes) / (1ull << 20));
  else std::snprintf(buf, sizeof(buf), "%.1f GiB", static_cast<double>(bytes) / (1ull << 30));
  return buf;
}

// A model that cannot fit used to die in an allocation (std::bad_alloc, exit 134) or half-way through a GPU
// upload. The model family says what it will hold (weights in the context's precision, the workspace for the
// token budget) before anything is read, and that is compared with what the device has free.
Status check_memory(const Checkpoint& checkpoint, const ops::DeviceContext& ctx, size_t workspace_tokens) {
  EMBEDSERVE_ASSIGN_OR_RETURN(ModelMemory need, model_memory(checkpoint.config, *checkpoint.store, ctx, workspace_tokens));
  auto available = ops::available_memory(ctx);
  if (!available.ok() || need.total() <= *available) return Status();  // unknown: let the allocations speak
  const bool gpu = ctx.device() == Device::kCuda;
  std::string ways = "lower --max-num-batched-tokens (the workspace holds one batch or chunk; under mean or CLS "
                     "pooling, which take no chunks, one whole input too: lower --context-length)";
  if (gpu && ctx.dtype() == DType::kF32) ways += ", use --dtype bfloat16 (half the weights' memory)";
  if (ctx.weight_dtype() != DType::kF8E4M3) ways += ", use --quantization fp8 (half the GEMM weights' memory again)";
  ways += ", or serve a smaller model";
  return resource_exhausted(
      "the model needs " + human_bytes(need.total()) + " of " + (gpu ? "GPU " + std::to_string(ctx.ordinal()) + "'s " : "") +
      "memory (weights " + human_bytes(need.weights) + " in " + dtype_name(ctx.weight_dtype()) + ", workspace " +
      human_bytes(need.workspace) + " for batches of " + std::to_string(workspace_tokens) + " tokens) but only " +
      human_bytes(*available) + " is available; " + ways);
}

}  // namespace

StatusOr<std::unique_ptr<ModelEngine>> ModelEngine::load(const EngineOptions& options, Device device,
                                                         std::shared_ptr<ops::Communicator> communicator) {
  ops::ContextOptions co;
  co.device = device;
  co.ordinal = options.device_ordinal + (communicator ? communicator->rank() : 0);
  co.precision = options.precision;
  co.threads = options.threads;
  co.cpu_gemm_kernel = options.cpu_gemm_kernel;
  co.cublas_path = options.cublas_path;
  co.cublas_workspace_bytes = options.cublas_workspace_bytes;
  co.tune_gemms = options.tune_gemms;
  co.graph_max_tokens = options.graph_max_tokens;
  co.quantization = options.quantization;
  // A rank of several runs its batches live: NCCL's kernels could be recorded too, but a graph replayed on one rank
  // while another fails would wait inside the graph, where abort cannot reach the launch that failed.
  if (communicator && communicator->size() > 1) co.graph_max_tokens = 0;
  co.communicator = std::move(communicator);
  co.tp_reduce_dtype = options.tp_reduce_dtype;
  co.tp_overlap_tokens = options.tp_overlap_tokens;
  co.tp_gemm_chunks = options.tp_gemm_chunks;
  using Clock = std::chrono::steady_clock;
  const auto seconds_since = [](Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); };
  EngineInfo::LoadTimes times;
  auto t = Clock::now();
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<ops::DeviceContext> ctx, ops::DeviceContext::create(co));
  times.device = seconds_since(t);
  t = Clock::now();
  EMBEDSERVE_ASSIGN_OR_RETURN(Checkpoint checkpoint, open_checkpoint(options));
  times.checkpoint = seconds_since(t);
  // An FP8 checkpoint runs as stored, flag or not (SGLang and vLLM read quantization_config the same way): the
  // context is made again for fp8 weights (after the device's own errors, which come first).
  if (checkpoint.config.quantization == Quantization::kFp8 && co.quantization != Quantization::kFp8) {
    co.quantization = Quantization::kFp8;
    ctx.reset();
    t = Clock::now();
    EMBEDSERVE_ASSIGN_OR_RETURN(ctx, ops::DeviceContext::create(co));
    times.device += seconds_since(t);
  }
  // FP8 GEMMs as a rank's row-parallel ones (o_proj, down_proj, whose partials the sums read, f32 ones included
  // with EMBEDSERVE_TP_REDUCE=f32, which the FP8 GEMM does not write) are not built or measured yet.
  if (co.quantization == Quantization::kFp8 && ctx->world_size() > 1)
    return unimplemented("--quantization fp8 (or an FP8 checkpoint) runs with --tp 1 only: tensor parallelism over "
                         "FP8 GEMMs is not built yet; drop one of the two");
  const ops::ScopedDevice on_device(*ctx);
  EMBEDSERVE_RETURN_IF_ERROR(on_device.status());
  // A long input comes in chunks of at most workspace_tokens, so the workspace is one batch's, not the
  // context's (on the CPU the 4B's is ~200 KB per token: 8 GB for its 40,960-token context). A pooling that
  // cannot take chunks needs the longest input whole.
  EngineOptions sized = options;
  if (!pools_from_last_chunk(checkpoint.pipeline.pooling))
    sized.workspace_tokens = std::max(options.workspace_tokens, options.longest_input_tokens);
  EMBEDSERVE_RETURN_IF_ERROR(check_memory(checkpoint, *ctx, sized.workspace_tokens));
  t = Clock::now();
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingModel> model,
                              load_model(checkpoint.config, *checkpoint.store, *ctx, sized.workspace_tokens));
  times.weights = seconds_since(t);
  // Weights (copies: bf16 as stored, or widened to f32 for the CPU's f32 mode) and the workspace: host memory on
  // the CPU, device memory on a GPU.
  EngineInfo info = describe_engine(checkpoint, sized, device, ctx->precision(), model->stored_dtype(),
                                    model->vocab_rows(), model->weight_bytes() + model->workspace_bytes());
  info.backend = ctx->description();
  info.chunked_prefill = model->takes_chunks(info.pooling);
  info.weights_dtype = dtype_name(ctx->weight_dtype());
  info.quantization = ctx->quantization();
  if (!checkpoint.config.quantization_layout.empty()) info.backend += "; checkpoint " + checkpoint.config.quantization_layout;
  info.weight_bytes = model->weight_bytes();
  info.workspace_bytes = model->workspace_bytes();
  info.ranks = {EngineRank{device, ctx->ordinal(), info.memory_bytes}};
  info.load_times = times;
  // The graphs of one query under the pooling this engine serves, so the first queries do not run live.
  t = Clock::now();
  EMBEDSERVE_RETURN_IF_ERROR(model->record_query_graphs(info.pooling, info.normalize));
  // One query as it will run, its graph replayed (the recording ran it once already), timed: the server's idle
  // threads poll about that long before they sleep (cli/serve_command.cc). 1–4 ms of start-up on an H200.
  if (ops::recorded_graphs(*ctx) > 0) {
    const std::vector<int32_t> ids(16, 0);
    const int32_t offsets[] = {0, 16};
    std::vector<float> vector(static_cast<size_t>(info.hidden_size));
    const auto query = Clock::now();
    EMBEDSERVE_RETURN_IF_ERROR(model->forward(ids, offsets, info.pooling, info.normalize, vector));
    info.query_seconds = seconds_since(query);
  }
  info.load_times.graphs = seconds_since(t);
  // Every weight, the table too, is a copy: drop the mapping, so nothing reads the file after load (a checkpoint
  // truncated or overwritten while serving would otherwise kill the process with SIGBUS at the next read).
  checkpoint.store.reset();
  return std::unique_ptr<ModelEngine>(new ModelEngine(std::move(info), std::move(ctx), std::move(model)));
}

Status ModelEngine::run(const SequenceBatch& batch, std::span<float> out) {
  // The batcher thread that runs batches is not the thread that loaded: select the device here.
  const ops::ScopedDevice on_device(*ctx_);
  EMBEDSERVE_RETURN_IF_ERROR(on_device.status());
  if (batch.chunk) return run_chunk(batch, out);
  if (batch.raw_vector.empty() || !info_.normalize)
    return model_->forward(batch.token_ids, batch.seq_offsets, info_.pooling, info_.normalize, out);
  // Some sequences want the pooled vector as is: pool without normalising, then normalise the others here with
  // the CPU pool op's arithmetic (sum of squares in double, one f32 reciprocal), so on the CPU a vector has the
  // same bits whichever batch it rides in. (On CUDA the device reduction may differ from it in the last bit.)
  EMBEDSERVE_RETURN_IF_ERROR(model_->forward(batch.token_ids, batch.seq_offsets, info_.pooling, false, out));
  const size_t hidden = static_cast<size_t>(info_.hidden_size);
  for (size_t s = 0; s < batch.num_sequences(); ++s) {
    if (batch.wants_raw(s)) continue;
    float* o = out.data() + s * hidden;
    double squares = 0.0;
    for (size_t i = 0; i < hidden; ++i) squares += static_cast<double>(o[i]) * o[i];
    if (squares <= 0.0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(squares));
    for (size_t i = 0; i < hidden; ++i) o[i] *= inv;
  }
  return Status();
}

Status ModelEngine::run_chunk(const SequenceBatch& batch, std::span<float> out) {
  const SequenceChunk& chunk = *batch.chunk;
  auto it = sequences_.find(chunk.sequence);
  const bool reserved = it != sequences_.end() && it->second->processed() == 0 && it->second->capacity() == chunk.total;
  if (chunk.start == 0 && reserved) {
    // Reserved by reserve_sequence() for this input and not begun: used as it is.
  } else if (chunk.start == 0) {
    // A first chunk starts its input over (a name reused after an input that never finished).
    if (it != sequences_.end()) sequences_.erase(it);
    EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<SequenceCache> cache, model_->new_sequence_cache(chunk.total));
    it = sequences_.emplace(chunk.sequence, std::move(cache)).first;
  } else if (it == sequences_.end() || it->second->processed() != chunk.start ||
             it->second->capacity() != chunk.total) {
    return internal_error("chunk at token " + std::to_string(chunk.start) + " of input " +
                          std::to_string(chunk.sequence) + " does not continue where that input's last chunk ended");
  }
  // A chunk is its input alone, so a raw vector (TEI's normalize: false) is the model's own unnormalised pool.
  const Status st =
      model_->forward_chunk(batch.token_ids, *it->second, info_.pooling, info_.normalize && !batch.wants_raw(0), out);
  // Its keys and values are read no more once the input is done, or once a chunk of it failed.
  if (!st.ok() || it->second->processed() == it->second->capacity()) sequences_.erase(it);
  return st;
}

Status ModelEngine::reserve_sequence(uint64_t sequence, size_t total) {
  const ops::ScopedDevice on_device(*ctx_);
  EMBEDSERVE_RETURN_IF_ERROR(on_device.status());
  sequences_.erase(sequence);  // freed first: the old cache's memory may be what the new one needs
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<SequenceCache> cache, model_->new_sequence_cache(total));
  sequences_.emplace(sequence, std::move(cache));
  return Status();
}

void ModelEngine::end_sequence(uint64_t sequence) {
  const ops::ScopedDevice on_device(*ctx_);  // device memory is freed with the device selected
  sequences_.erase(sequence);
}

}  // namespace embedserve
