// serve's --dp engine replicas: loading them (GPUs from --base-gpu-id, the CPU's threads split, the injected
// failures), and where each runs for the start-up line, /info and /metrics.
#include "cli/serve_replicas.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <thread>

#include "engine/engine_factory.h"
#include "engine/fault_injection.h"
#include "ops/context.h"

namespace embedserve::cli {
namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + " MiB"; }

}  // namespace

// Loaded one after another: each load is bound by its own copy to the GPU, and loading shares process-wide state
// (cuBLAS is loaded once, on first use).
StatusOr<std::vector<std::unique_ptr<Engine>>> load_replicas(const EngineOptions& base, size_t replicas,
                                                             const std::function<void(const std::string&)>& notice) {
  std::map<size_t, uint64_t> failures;
  if (const char* spec = std::getenv(kInjectEngineFailureEnv); spec && *spec) {
    EMBEDSERVE_ASSIGN_OR_RETURN(failures, parse_injected_failures(spec));
    for (const auto& [replica, call] : failures) {
      if (replica >= replicas)
        return invalid_argument(std::string(kInjectEngineFailureEnv) + " names replica " + std::to_string(replica) +
                                ", but --dp " + std::to_string(replicas) + " starts replicas 0 to " +
                                std::to_string(replicas - 1));
      notice("test hook " + std::string(kInjectEngineFailureEnv) + ": engine replica " + std::to_string(replica) +
             " fails its engine call " + std::to_string(call) + " and every later one, as a lost GPU would");
    }
  }
  const int tp = std::max(1, base.tensor_parallel);
  const int visible = ops::visible_gpus();
  const bool cuda = base.device ? *base.device == Device::kCuda : visible > 0;
  const int needed = base.device_ordinal + static_cast<int>(replicas) * tp;
  if (cuda && visible > 0 && needed > visible)
    return invalid_argument("--dp " + std::to_string(replicas) + " × --tp " + std::to_string(tp) + " from --base-gpu-id " +
                            std::to_string(base.device_ordinal) + " needs GPUs " + std::to_string(base.device_ordinal) +
                            " to " + std::to_string(needed - 1) + ", but this process sees " + std::to_string(visible) +
                            " (CUDA_VISIBLE_DEVICES decides which); lower --dp or --tp, or make more GPUs visible");
  int threads = base.threads;
  if (!cuda && replicas > 1) {
    // The copies run at once, so each takes its share of the cores: together they use what one would.
    const int total = base.threads > 0 ? base.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::max(1, total / static_cast<int>(replicas));
  }
  std::vector<std::unique_ptr<Engine>> engines;
  for (size_t r = 0; r < replicas; ++r) {
    EngineOptions options = base;
    options.device_ordinal = base.device_ordinal + static_cast<int>(r) * tp;
    options.threads = threads;
    auto engine = create_engine(options);
    if (!engine.ok())
      return replicas == 1 ? engine.status() : engine.status().with_context("engine replica " + std::to_string(r));
    std::unique_ptr<Engine> loaded = std::move(engine).value();
    if (auto it = failures.find(r); it != failures.end())
      loaded = with_injected_failure(std::move(loaded), r, it->second);
    engines.push_back(std::move(loaded));
  }
  return engines;
}

std::vector<ReplicaDevice> describe_replicas(const std::vector<std::unique_ptr<Engine>>& engines,
                                             const EngineOptions& base) {
  const std::vector<ops::GpuMemory> gpus = ops::gpu_memory();
  const int tp = std::max(1, base.tensor_parallel);
  std::vector<ReplicaDevice> out;
  for (size_t r = 0; r < engines.size(); ++r) {
    const EngineInfo& info = engines[r]->info();
    ReplicaDevice d;
    d.engine_bytes = info.memory_bytes;
    if (info.device != Device::kCuda) {
      d.device = "cpu";
    } else {
      d.device = "cuda:";
      for (int rank = 0; rank < tp; ++rank) {
        const int ordinal = base.device_ordinal + static_cast<int>(r) * tp + rank;
        if (rank) d.device += '+';
        d.device += std::to_string(ordinal);
        for (const ops::GpuMemory& g : gpus) {
          if (g.ordinal != ordinal) continue;
          if (d.name.empty()) d.name = g.name;
          d.memory_total_bytes += g.total_bytes;
          d.memory_used_bytes += g.total_bytes - std::min(g.free_bytes, g.total_bytes);
        }
      }
    }
    out.push_back(std::move(d));
  }
  return out;
}

std::string replicas_line(const std::vector<ReplicaDevice>& devices) {
  std::string line;
  for (size_t r = 0; r < devices.size(); ++r) {
    const ReplicaDevice& d = devices[r];
    line += (r ? "; " : "") + std::to_string(r) + ": " + d.device;
    if (!d.name.empty())
      line += " " + d.name + ", " + mib(d.memory_used_bytes) + " of " + mib(d.memory_total_bytes) + " in use";
    line += ", engine " + mib(d.engine_bytes);
  }
  return line;
}

}  // namespace embedserve::cli
