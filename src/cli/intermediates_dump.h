// embed --dump-intermediates: every named intermediate of each text's forward pass, as .npy files that
// tools/compare_intermediates.py compares with transformers layer by layer.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"

namespace embedserve::cli {

// Embeds each text alone (a batch of one, so rows are that text's tokens) and writes, for text i,
// DIR/text-{i:05d}/{LL}-{name}.npy (LL the layer, zero-padded, or "in" / "out" outside the layers), float32
// [rows, cols] with bf16 widened exactly, and DIR/manifest.json (model, texts, token_ids, pooling, dtype, layers).
// `engine` must be a model engine (create_engine's); DIR is created.
Status dump_intermediates(Engine& engine, const std::vector<std::string>& texts,
                          const std::vector<std::vector<int32_t>>& token_ids, const std::string& model, int layers,
                          const std::filesystem::path& dir);

}  // namespace embedserve::cli
