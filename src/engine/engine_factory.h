// create_engine: from a model directory and a device choice to a ready Engine.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "core/status.h"
#include "engine/engine.h"

namespace embedserve {

struct EngineOptions {
  std::filesystem::path model_dir;   // already resolved (weights' resolve_model_path)
  std::string model_id;              // for EngineInfo::model_id (directory name or hub id)
  std::string device = "auto";       // "auto" | "cpu" | "cuda"
  int threads = 0;                   // 0: all cores
  size_t max_batch_tokens = 16384;   // the largest batch the engine accepts (workspace sized for it)
  // Compute precision: "auto" | "f32" | "bf16". The CPU computes in f32 only; CUDA's "auto" is bf16 (speed),
  // "f32" its parity mode (SGEMM, TF32 off).
  std::string dtype = "auto";
};

// "auto" picks CUDA when a CUDA backend is built and a GPU is visible, else the CPU; "cuda" without a
// CUDA build or without a GPU is an error saying which.
// Errors name the file or the option at fault.
StatusOr<std::unique_ptr<Engine>> create_engine(const EngineOptions& options);

}  // namespace embedserve
