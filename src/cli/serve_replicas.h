// serve's --dp engine replicas: loading them, and where each runs (for the start-up line, /info and /metrics).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/engine_options.h"
#include "server/replica_report.h"

namespace embedserve::cli {

// `replicas` copies of the model: replica r on GPUs base.device_ordinal + r × tp … + tp − 1 (CUDA_VISIBLE_DEVICES
// order, tp = base.tensor_parallel), or on the CPU copies that split base.threads (all cores when 0) between them;
// each wrapped to fail on cue where EMBEDSERVE_INJECT_ENGINE_FAILURE asks (`notice` says so). Errors: more GPUs
// asked than visible, a failure injected into a replica that does not exist, a replica's load error (named).
StatusOr<std::vector<std::unique_ptr<Engine>>> load_replicas(const EngineOptions& base, size_t replicas,
                                                             const std::function<void(const std::string&)>& notice);

// Where each replica runs, measured now (call once all are loaded: GPU memory in use then counts every replica's).
// A replica split by --tp names each of its GPUs ("cuda:0+1") and adds up their memory.
std::vector<ReplicaDevice> describe_replicas(const std::vector<std::unique_ptr<Engine>>& engines,
                                             const EngineOptions& base);

// The start-up line's replica list: "0: cuda:0 NVIDIA H200, 9120 MiB of 143771 MiB in use, engine 1400 MiB; 1: …".
std::string replicas_line(const std::vector<ReplicaDevice>& devices);

}  // namespace embedserve::cli
