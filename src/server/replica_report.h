// Engine replicas (--dp) as the HTTP routes report them: where each runs, and whether it still serves.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"
#include "server/http_types.h"
#include "server/json_writer.h"

namespace embedserve {

// Where one replica runs, measured once it has loaded (serve fills it in; plain data, so the server sees no device).
struct ReplicaDevice {
  std::string device;             // "cuda:1", or "cpu"
  std::string name;               // the GPU's name ("NVIDIA H200"); empty on the CPU
  size_t memory_total_bytes = 0;  // the GPU's memory; 0 on the CPU
  size_t memory_used_bytes = 0;   // in use on that GPU once every replica loaded, by any process; 0 on the CPU
  size_t engine_bytes = 0;        // weights and workspace this replica holds
};

// GET /health once the model is loaded: {"status":"healthy"} while every replica serves (the shape a single
// replica always had); 200 {"status":"degraded","replicas":{...}} while some have failed and one still serves;
// 503 {"status":"unhealthy","replicas":{...}} when none does. "replicas" holds up, total, and failed: one
// {"replica", "fault"} per replica out of rotation.
ServerResponse health_response(const std::vector<ReplicaStatus>& replicas);

// /info's "replicas" value: one object per replica with where it runs and whether it serves.
void write_replicas(JsonWriter& w, const std::vector<ReplicaStatus>& replicas,
                    const std::vector<ReplicaDevice>& devices);

}  // namespace embedserve
