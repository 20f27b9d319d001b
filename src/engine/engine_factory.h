// create_engine: from a model directory and a device choice to a ready Engine.
#pragma once

#include <memory>
#include <optional>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/engine_options.h"

namespace embedserve {

// The device create_engine runs on: `requested`, or for auto (nullopt) CUDA when a CUDA backend is built and a
// GPU is visible, else the CPU. For callers whose defaults depend on the device (the CPU's batch budget).
Device resolve_device(std::optional<Device> requested);

// "auto" picks CUDA when a CUDA backend is built and a GPU is visible, else the CPU; "cuda" without a
// CUDA build or without a GPU is an error saying which.
// Errors name the file or the option at fault.
StatusOr<std::unique_ptr<Engine>> create_engine(const EngineOptions& options);

}  // namespace embedserve
