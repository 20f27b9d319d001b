// LocalEngine: the model, tokenizer and text pipeline behind one Python `embedserve.Engine`, in plain C++.
//
// It wires the same pieces `embedserve embed` does (resolve_model_path, TextPipeline, create_engine, the
// Scheduler's token-budget packing) so a text gets the same ids and the same vector bits from either; the
// nanobind layer (module.cc) only converts types, releases the GIL and turns a Status into an exception.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "text/text_pipeline.h"
#include "text/tokenizer_encoder.h"

namespace embedserve::python {

// Engine(...)'s arguments, spelled as the CLI's flags take them so their parsing (and messages) are shared.
struct LoadOptions {
  std::string model_path;                  // a model directory or a hub id
  std::string device = "auto";             // --device
  std::string dtype = "auto";              // --dtype
  // --max-num-batched-tokens: the default budget of one engine call; nullopt: the device's (16384 on a GPU,
  // 2048 on the CPU)
  std::optional<size_t> max_num_batched_tokens;
  int threads = 0;                         // --threads (CPU; 0: all cores)
  std::string revision = "main";           // --revision, for hub ids
};

// encode(...)'s options; nullopt means "not given", as an absent flag does.
struct EncodeOptions {
  std::optional<std::string> prompt_name;
  std::optional<std::string> instruction;
  std::optional<long long> dimensions;
  bool normalize = true;
  std::optional<long long> batch_tokens;  // this call's budget; nullopt: max_num_batched_tokens
  std::optional<long long> max_length;    // truncate to this many tokens (EOS kept); nullopt: too long is an error
  bool show_progress = false;
};

// float32 [rows, cols], row-major.
struct Matrix {
  std::vector<float> values;
  size_t rows = 0;
  size_t cols = 0;
};

class LocalEngine {
 public:
  // Resolves the model (downloading a hub id as `embed` does), loads the tokenizer and the engine.
  static StatusOr<std::unique_ptr<LocalEngine>> open(const LoadOptions& options);

  // Texts → vectors in input order: prompt prefix, tokenisation and truncation through the text pipeline.
  // Errors name the input ("texts[3]: the text ...").
  StatusOr<Matrix> encode_texts(const std::vector<std::string>& texts, const EncodeOptions& options) const;
  // Token ids (EOS included, as a client sends them) → vectors; checked against the vocabulary and the limit.
  StatusOr<Matrix> encode_ids(std::vector<std::vector<int32_t>> ids, const EncodeOptions& options) const;
  // The ids encode_texts would embed for each text (prompt and EOS included).
  StatusOr<std::vector<std::vector<int32_t>>> tokenize(const std::vector<std::string>& texts,
                                                       const EncodeOptions& options) const;

  const EngineInfo& info() const { return engine_->info(); }
  size_t max_num_batched_tokens() const { return max_num_batched_tokens_; }

 private:
  LocalEngine(std::unique_ptr<TokenizerEncoder> encoder, std::unique_ptr<TextPipeline> pipeline,
              std::unique_ptr<Engine> engine, size_t max_num_batched_tokens);

  Status check_output_options(const EncodeOptions& options) const;
  StatusOr<Truncation> truncation(const EncodeOptions& options) const;
  // Runs the ids through a Scheduler on the engine (longest first, as `embed` packs a window; inputs over the
  // budget in `embed`'s chunks) and returns the vectors in input order, cut to `dimensions`.
  StatusOr<Matrix> run(std::vector<std::vector<int32_t>> ids, const EncodeOptions& options) const;

  std::unique_ptr<TokenizerEncoder> encoder_;  // the pipeline holds a reference to it
  std::unique_ptr<TextPipeline> pipeline_;
  // One caller at a time (Engine is single-caller): the Python class serialises calls on one object.
  std::unique_ptr<Engine> engine_;
  size_t max_num_batched_tokens_;
};

}  // namespace embedserve::python
