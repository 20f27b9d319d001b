// Injected engine failures, the test hook behind EMBEDSERVE_INJECT_ENGINE_FAILURE: an Engine decorator that fails
// as a lost device would, so the scheduler's fault handling is tested with any backend, CUDA included.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string_view>

#include "core/status.h"
#include "engine/engine.h"

namespace embedserve {

// The environment variable serve reads: "REPLICA:N[,REPLICA:N...]", replica REPLICA's Nth engine call (counting
// from 1) and every later one fail.
inline constexpr const char* kInjectEngineFailureEnv = "EMBEDSERVE_INJECT_ENGINE_FAILURE";

// Parses the variable's value into {replica: the call that fails first}; an error names what is wrong.
StatusOr<std::map<size_t, uint64_t>> parse_injected_failures(std::string_view spec);

// Wraps `inner`: calls before the `fail_at`th go through; that one and all after fail with an internal error like
// the one a CUDA fault gives (a device that has failed stays failed), without calling `inner`. Validation runs as
// for any engine, so a refused batch is still the batch's fault.
std::unique_ptr<Engine> with_injected_failure(std::unique_ptr<Engine> inner, size_t replica, uint64_t fail_at);

}  // namespace embedserve
