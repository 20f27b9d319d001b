// embedserve embed on OpenAI batch input (lines of {"custom_id", "method", "url", "body"}): the server's batch
// endpoint run offline, writing OpenAI's output and error line formats.
#pragma once

#include <filesystem>
#include <string>

#include "cli/flags.h"
#include "engine/engine_options.h"

namespace embedserve::cli {

// True when the file's first non-blank line is a JSON object with a "custom_id": OpenAI batch input.
bool is_batch_input(const std::filesystem::path& input);

// Runs every request of `input` and writes the answers to --output (OpenAI's output lines) and the failed ones
// to --error-output (default: the output's name with ".errors" before its extension). Returns the exit code.
// `engine` holds the flags embed already parsed (apply_engine_flags).
int run_embed_batch(const Flags& flags, const std::string& model_path, const std::filesystem::path& input,
                    const std::filesystem::path& output, EngineOptions engine);

}  // namespace embedserve::cli
