// embedserve bench: tokens per second through Engine::embed for fixed-length inputs of random token ids.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "engine/engine_factory.h"
#include "weights/model_source.h"

namespace embedserve::cli {
namespace {

using Clock = std::chrono::steady_clock;

StatusOr<std::vector<int>> parse_lengths(const std::vector<std::string>& values) {
  std::vector<int> lengths;
  for (const auto& value : values) {
    std::stringstream ss(value);
    std::string item;
    while (std::getline(ss, item, ',')) {
      if (item.empty()) continue;
      char* end = nullptr;
      const long n = std::strtol(item.c_str(), &end, 10);
      if (*end != '\0' || n < 1 || n > (1 << 20))
        return invalid_argument("--seq-len: '" + item + "' is not a length between 1 and 1048576");
      lengths.push_back(static_cast<int>(n));
    }
  }
  if (lengths.empty()) return invalid_argument("--seq-len needs at least one length");
  return lengths;
}

struct Result {
  int seq_len = 0;
  size_t seqs_per_batch = 0;
  size_t batches = 0;
  double seconds = 0;
  double cpu_seconds = 0;  // process CPU time over the same span, every thread's (spin-waits included)
};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// Runs batches of `seqs` sequences of `len` random ids until `min_seconds` have passed (at least one
// batch), after one untimed batch that faults in the weights and sizes the workspace.
StatusOr<Result> measure(Engine& engine, int len, size_t max_num_batched_tokens, double min_seconds,
                         std::mt19937& rng) {
  const EngineInfo& info = engine.info();
  if (info.max_position_embeddings && len > info.max_position_embeddings)
    return invalid_argument("--seq-len " + std::to_string(len) + " exceeds the model's maximum of " +
                            std::to_string(info.max_position_embeddings) + " positions");
  Result r;
  r.seq_len = len;
  r.seqs_per_batch = std::max<size_t>(1, max_num_batched_tokens / static_cast<size_t>(len));
  std::uniform_int_distribution<int32_t> id(0, info.vocab_size - 1);
  SequenceBatch batch;
  std::vector<int32_t> ids(static_cast<size_t>(len));
  for (size_t s = 0; s < r.seqs_per_batch; ++s) {
    for (auto& t : ids) t = id(rng);
    batch.add(ids);
  }
  std::vector<float> out(r.seqs_per_batch * static_cast<size_t>(info.hidden_size));
  EMBEDSERVE_RETURN_IF_ERROR(engine.embed(batch, out));  // warm-up
  const auto start = Clock::now();
  const double cpu_start = process_cpu_seconds();
  do {
    EMBEDSERVE_RETURN_IF_ERROR(engine.embed(batch, out));
    ++r.batches;
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } while (r.seconds < min_seconds);
  r.cpu_seconds = process_cpu_seconds() - cpu_start;
  return r;
}

}  // namespace

int run_bench(int argc, char** argv) {
  Flags flags("bench",
              "Measures the engine's throughput: batches of fixed-length inputs of random token ids through "
              "Engine::embed, reporting tokens and inputs per second for each length. See docs/PERFORMANCE.md.",
              with_tensor_parallel_flags({
                  {"model-path", "PATH", "model directory or hub id (required)", ""},
                  {"device", "DEVICE", "cpu, cuda, or auto", "auto"},
                  {"dtype", "DTYPE", "precision: auto or bf16 (CUDA computes in bf16; the CPU keeps bf16 weights, f32 activations), or f32 (f32 throughout: the parity mode)", "auto"},
                  {"quantization", "METHOD", kQuantizationHelp, ""},
                  {"threads", "N", "CPU threads (0: all cores)", "0"},
                  {"seq-len", "N,N", "input lengths in tokens, comma-separated", "32,512"},
                  {"max-num-batched-tokens", "N", "tokens per batch (batch = N / length inputs, at least one)", "4096",
                   false, {"batch-tokens"}},
                  {"seconds", "S", "time each length for at least S seconds (after one warm-up batch)", "10"},
                  {"seed", "N", "seed of the random token ids", "1"},
              }));
  if (auto done = flags.parse_or_exit(argc, argv)) return *done;
  const auto fail = [&flags](const Status& st) { return flags.fail(st); };
  const auto model_path = flags.get("model-path");
  if (!model_path) return flags.fail(invalid_argument("--model-path is required (see --help)"), 2);
  auto threads = flags.get_int("threads", 0, 0, 4096);
  auto max_num_batched_tokens = flags.get_int("max-num-batched-tokens", 4096, 1, 1 << 24);
  auto seconds = flags.get_double("seconds", 10, 0, 86400);
  auto seed = flags.get_int("seed", 1, 0, 1LL << 32);
  auto lengths = parse_lengths(flags.get_all("seq-len").empty() ? std::vector<std::string>{"32,512"}
                                                                 : flags.get_all("seq-len"));
  for (const Status& st :
       {threads.status(), max_num_batched_tokens.status(), seconds.status(), seed.status(), lengths.status()})
    if (!st.ok()) return flags.fail(st, 2);

  ModelSourceOptions source;
  source.environment = read_hub_environment();
  auto model_dir = resolve_model_path(*model_path, source);
  if (!model_dir.ok()) return fail(model_dir.status());
  EngineOptions options;
  options.model_dir = *model_dir;
  options.model_id = *model_path;
  if (Status st = apply_engine_flags(flags, options); !st.ok()) return flags.fail(st, 2);
  options.threads = static_cast<int>(*threads);
  if (Status st = apply_engine_environment(options); !st.ok()) return fail(st);
  if (Status st = apply_tensor_parallel_flags(flags, options); !st.ok()) return flags.fail(st, 2);
  // The workspace holds one batch of the budget, or one input of the longest length when that is longer.
  options.workspace_tokens = static_cast<size_t>(*max_num_batched_tokens);
  for (int len : *lengths) options.workspace_tokens = std::max(options.workspace_tokens, static_cast<size_t>(len));
  const auto load_start = Clock::now();
  auto engine = create_engine(options);
  if (!engine.ok()) return fail(engine.status());
  const double load_s = std::chrono::duration<double>(Clock::now() - load_start).count();
  const EngineInfo& info = (*engine)->info();
  std::printf("model %s (%s, hidden %d, vocab %d), loaded in %.1f s, %.2f GB held (weights %.2f GB as %s, "
              "workspace %.2f GB)\n",
              info.model_id.c_str(), info.dtype.c_str(), info.hidden_size, info.vocab_size, load_s,
              info.memory_bytes / 1e9, info.weight_bytes / 1e9, info.weights_dtype.c_str(), info.workspace_bytes / 1e9);
  // The kernels decide most of the speed: say which ran (OpenBLAS's, or the GPU and cuBLAS).
  std::printf("device %s\n", info.backend.c_str());
  // tokens/cpu-s: tokens per second of CPU time used, which other processes on a shared machine disturb
  // less than wall-clock throughput (they still share caches and memory bandwidth).
  std::printf("%8s %8s %8s %10s %12s %10s %10s %14s\n", "seq_len", "inputs", "batches", "seconds", "tokens/s",
              "inputs/s", "s/batch", "tokens/cpu-s");
  std::mt19937 rng(static_cast<uint32_t>(*seed));
  for (int len : *lengths) {
    auto r = measure(**engine, len, static_cast<size_t>(*max_num_batched_tokens), *seconds, rng);
    if (!r.ok()) return fail(r.status());
    const double inputs = static_cast<double>(r->batches * r->seqs_per_batch);
    std::printf("%8d %8zu %8zu %10.2f %12.1f %10.2f %10.3f %14.1f\n", len, r->seqs_per_batch, r->batches, r->seconds,
                inputs * len / r->seconds, inputs / r->seconds, r->seconds / r->batches, inputs * len / r->cpu_seconds);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace embedserve::cli
