// LocalEngine: the pieces of `embedserve embed` (model source, text pipeline, engine, scheduler) behind one object.
#include "python/local_engine.h"

#include <algorithm>
#include <future>
#include <numeric>
#include <utility>

#include "cli/engine_flags.h"
#include "cli/progress_bar.h"
#include "engine/engine_factory.h"
#include "scheduler/scheduler.h"
#include "text/matryoshka.h"
#include "tokenizer/tokenizer.h"
#include "weights/model_config.h"
#include "weights/model_source.h"
#include "weights/sentence_transformers_config.h"

namespace embedserve::python {
namespace {

// The pipeline's messages name encode()'s keyword arguments, as the CLI's name its flags.
const OptionNames kArgumentNames{"prompt_name", "instruction", "dimensions", "pass max_length=N to truncate"};

Status check_range(const char* name, long long value, long long min, long long max) {
  if (value < min || value > max)
    return invalid_argument(std::string(name) + " must be between " + std::to_string(min) + " and " +
                            std::to_string(max) + ", got " + std::to_string(value));
  return Status();
}

}  // namespace

StatusOr<std::unique_ptr<LocalEngine>> LocalEngine::open(const LoadOptions& options) {
  if (options.model_path.empty()) return invalid_argument("model_path is required: a model directory or a hub id");
  EMBEDSERVE_ASSIGN_OR_RETURN(std::optional<Device> device, cli::parse_device(options.device));
  EMBEDSERVE_ASSIGN_OR_RETURN(Precision precision, cli::parse_precision(options.dtype));
  if (options.max_num_batched_tokens)
    EMBEDSERVE_RETURN_IF_ERROR(
        check_range("max_num_batched_tokens", static_cast<long long>(*options.max_num_batched_tokens), 1, 1 << 24));
  EMBEDSERVE_RETURN_IF_ERROR(check_range("threads", options.threads, 0, 4096));

  ModelSourceOptions source;
  source.environment = cli::read_hub_environment();
  source.revision = options.revision;
  EMBEDSERVE_ASSIGN_OR_RETURN(std::filesystem::path model_dir, resolve_model_path(options.model_path, source));
  EMBEDSERVE_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(model_dir / "config.json"));
  EMBEDSERVE_ASSIGN_OR_RETURN(SentenceTransformersConfig st_config, load_sentence_transformers_config(model_dir));
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer, Tokenizer::load(model_dir));
  auto encoder = std::make_unique<TokenizerEncoder>(std::move(tokenizer));
  const size_t context = static_cast<size_t>(config.max_position_embeddings);
  auto pipeline = std::make_unique<TextPipeline>(
      *encoder, PromptConfig{st_config.prompts, st_config.default_prompt_name}, context, config.vocab_size,
      kArgumentNames);

  EngineOptions eopts;
  eopts.model_dir = model_dir;
  eopts.model_id = options.model_path;
  eopts.device = resolve_device(device);  // the default budget depends on it
  eopts.precision = precision;
  eopts.threads = options.threads;
  const size_t budget = options.max_num_batched_tokens.value_or(default_max_num_batched_tokens(*eopts.device));
  // As `serve` sizes it: a batch or a chunk (an engine object lives across calls and cannot know its longest
  // input in advance as `embed` does; a context-long one goes in chunks, or whole where the model takes none).
  eopts.workspace_tokens = workspace_tokens_for(default_scheduler_options(budget), context);
  eopts.longest_input_tokens = context;
  EMBEDSERVE_RETURN_IF_ERROR(cli::apply_engine_environment(eopts));
  EMBEDSERVE_ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, create_engine(eopts));
  return std::unique_ptr<LocalEngine>(
      new LocalEngine(std::move(encoder), std::move(pipeline), std::move(engine), budget));
}

LocalEngine::LocalEngine(std::unique_ptr<TokenizerEncoder> encoder, std::unique_ptr<TextPipeline> pipeline,
                         std::unique_ptr<Engine> engine, size_t max_num_batched_tokens)
    : encoder_(std::move(encoder)),
      pipeline_(std::move(pipeline)),
      engine_(std::move(engine)),
      max_num_batched_tokens_(max_num_batched_tokens) {}

Status LocalEngine::check_output_options(const EncodeOptions& options) const {
  const size_t hidden = static_cast<size_t>(info().hidden_size);
  if (options.dimensions) EMBEDSERVE_RETURN_IF_ERROR(check_dimensions(*options.dimensions, hidden, kArgumentNames));
  // The same refusal as TEI's /embed: the engine's last module normalises, so raw vectors do not exist here.
  if (!options.normalize && info().normalize)
    return invalid_argument("normalize=False is not available: this model's pipeline ends with a Normalize module, "
                            "so the engine returns unit vectors");
  if (options.batch_tokens)
    EMBEDSERVE_RETURN_IF_ERROR(
        check_range("batch_tokens", *options.batch_tokens, 1, static_cast<long long>(info().workspace_tokens)));
  return Status();
}

StatusOr<Truncation> LocalEngine::truncation(const EncodeOptions& options) const {
  if (!options.max_length) return Truncation{};
  EMBEDSERVE_RETURN_IF_ERROR(
      check_range("max_length", *options.max_length, 1, static_cast<long long>(pipeline_->max_tokens())));
  return Truncation{true, false, static_cast<size_t>(*options.max_length)};
}

StatusOr<std::vector<std::vector<int32_t>>> LocalEngine::tokenize(const std::vector<std::string>& texts,
                                                                  const EncodeOptions& options) const {
  EMBEDSERVE_ASSIGN_OR_RETURN(Truncation cut, truncation(options));
  EMBEDSERVE_ASSIGN_OR_RETURN(std::string prefix, pipeline_->prefix({options.prompt_name, options.instruction}));
  std::vector<std::vector<int32_t>> ids;
  ids.reserve(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    auto one = pipeline_->encode(prefix, texts[i], cut);
    if (!one.ok()) return one.status().with_context("texts[" + std::to_string(i) + "]");
    ids.push_back(std::move(one).value());
  }
  return ids;
}

StatusOr<Matrix> LocalEngine::encode_texts(const std::vector<std::string>& texts, const EncodeOptions& options) const {
  EMBEDSERVE_RETURN_IF_ERROR(check_output_options(options));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto ids, tokenize(texts, options));
  return run(std::move(ids), options);
}

StatusOr<Matrix> LocalEngine::encode_ids(std::vector<std::vector<int32_t>> ids, const EncodeOptions& options) const {
  if (options.prompt_name || options.instruction)
    return invalid_argument("prompt_name and instruction apply to texts, not to token ids: put the prompt's ids "
                            "in front of each sequence, or pass texts");
  EMBEDSERVE_RETURN_IF_ERROR(check_output_options(options));
  EMBEDSERVE_ASSIGN_OR_RETURN(Truncation cut, truncation(options));
  for (size_t i = 0; i < ids.size(); ++i) {
    auto checked = pipeline_->check_ids(std::move(ids[i]), cut);
    if (!checked.ok()) return checked.status().with_context("token_ids[" + std::to_string(i) + "]");
    ids[i] = std::move(checked).value();
  }
  return run(std::move(ids), options);
}

StatusOr<Matrix> LocalEngine::run(std::vector<std::vector<int32_t>> ids, const EncodeOptions& options) const {
  const size_t n = ids.size();
  const size_t hidden = static_cast<size_t>(info().hidden_size);
  const size_t dims = options.dimensions ? static_cast<size_t>(*options.dimensions) : hidden;
  Matrix out{{}, n, dims};
  if (n == 0) return out;

  // Longest first, as `embed` orders a window: similar lengths share a batch. Row j of the result is input order[j].
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() > ids[b].size(); });
  size_t total_tokens = 0;
  Job job;
  job.inputs.reserve(n);
  for (size_t i : order) {
    total_tokens += ids[i].size();
    job.inputs.push_back(std::move(ids[i]));
  }

  cli::ProgressBar bar("embedding", total_tokens, "tokens", options.show_progress);
  size_t tokens_done = 0;  // advanced on the batcher thread only; read after shutdown() has joined it
  SchedulerOptions sopts = default_scheduler_options(options.batch_tokens ? static_cast<size_t>(*options.batch_tokens)
                                                                  : max_num_batched_tokens_);
  sopts.on_batch = [&](const BatchReport& b) {
    if (!b.ok) return;
    tokens_done += b.tokens;
    bar.update(tokens_done);
  };
  Scheduler scheduler(*engine_, sopts);
  std::future<StatusOr<JobResult>> pending = scheduler.submit_future(std::move(job));
  StatusOr<JobResult> result = pending.get();
  scheduler.shutdown();
  if (!result.ok()) return result.status();
  bar.finish();

  const std::vector<float> rows =  // f32 [n, dims], longest input first
      dims == hidden ? std::move(result->vectors) : truncate_rows(result->vectors, hidden, dims);
  out.values.resize(n * dims);
  for (size_t j = 0; j < n; ++j)
    std::copy_n(rows.data() + j * dims, dims, out.values.data() + order[j] * dims);
  return out;
}

}  // namespace embedserve::python
