// EmbedService: prompts → tokens → scheduler → vectors, shared by the OpenAI and TEI endpoints.
#include "server/embed_service.h"

#include <algorithm>

#include "server/metrics.h"

namespace embedserve {
namespace {

std::string input_name(size_t index) { return "input[" + std::to_string(index) + "]"; }

}  // namespace

EmbedService::EmbedService(const TextEncoder& encoder, Scheduler& scheduler, WorkerPool& pool, const EngineInfo& info,
                           EmbedServiceConfig config, Metrics* metrics)
    : encoder_(encoder), scheduler_(scheduler), pool_(pool), info_(info), config_(std::move(config)), metrics_(metrics) {}

std::optional<std::string> EmbedService::resolve_model(const std::optional<std::string>& requested) const {
  if (!requested) return config_.served_names.front();  // lenient: clients that omit `model` get the default
  for (const auto& name : config_.served_names)
    if (*requested == name) return name;
  if (!config_.strict_model_name) return config_.served_names.front();  // one model: e.g. a hub id for a local dir
  return std::nullopt;
}

std::optional<ApiError> EmbedService::encode_text(const std::string& text, const EmbedParams& params, size_t index,
                                                  std::vector<int32_t>& ids) const {
  const size_t max = config_.max_input_tokens;
  StatusOr<std::vector<int32_t>> encoded = std::vector<int32_t>{};
  if (params.truncate && params.truncate_left) {
    // Keep the end of the text: cut content from the front, then append the special tokens the
    // post-processor adds (Qwen3-Embedding's post-processor only appends, so this is its exact output).
    auto content = encoder_.encode(text, false, 0);
    auto specials = encoder_.encode("", true, 0);
    if (!content.ok()) encoded = content.status();
    else if (!specials.ok()) encoded = specials.status();
    else {
      const size_t keep = max > specials->size() ? max - specials->size() : 0;
      std::vector<int32_t> out;
      const size_t from = content->size() > keep ? content->size() - keep : 0;
      out.assign(content->begin() + static_cast<ptrdiff_t>(from), content->end());
      out.insert(out.end(), specials->begin(), specials->end());
      encoded = std::move(out);
    }
  } else {
    encoded = encoder_.encode(text, true, params.truncate ? max : 0);
  }
  if (!encoded.ok()) return bad_request(input_name(index) + ": " + encoded.status().message(), "input");
  ids = std::move(encoded).value();
  if (ids.empty()) return bad_request(input_name(index) + " produced no tokens", "input");
  if (ids.size() > max)
    return bad_request(input_name(index) + " has " + std::to_string(ids.size()) + " tokens, more than the maximum of " +
                           std::to_string(max) + "; shorten it or pass \"truncate\": true",
                       "input", "context_length_exceeded");
  return std::nullopt;
}

std::optional<ApiError> EmbedService::tokenize_inputs(const EmbedParams& params,
                                                      std::vector<std::vector<int32_t>>& out) const {
  if (params.prompt_name && params.instruction)
    return bad_request("give either 'prompt_name' or 'instruction', not both", "instruction");
  std::string prefix;
  if (params.instruction) {
    prefix = "Instruct: " + *params.instruction + "\nQuery:";
  } else if (const auto& name = params.prompt_name ? params.prompt_name : config_.default_prompt_name; name) {
    auto it = config_.prompts.find(*name);
    if (it == config_.prompts.end()) {
      std::string known;
      for (const auto& [k, v] : config_.prompts) known += (known.empty() ? "" : ", ") + k;
      return bad_request("unknown prompt_name '" + *name + "'; this model defines: " + (known.empty() ? "none" : known),
                         "prompt_name");
    }
    prefix = it->second;
  }
  const bool has_prompt = params.prompt_name.has_value() || params.instruction.has_value();
  out.resize(params.inputs.size());
  for (size_t i = 0; i < params.inputs.size(); ++i) {
    const EmbedInput& in = params.inputs[i];
    if (!in.is_ids) {
      if (auto e = encode_text(prefix.empty() ? in.text : prefix + in.text, params, i, out[i])) return e;
      continue;
    }
    if (has_prompt)
      return bad_request("a prompt cannot be applied to token ids; send text, or put the prompt's tokens in the ids",
                         params.prompt_name ? "prompt_name" : "instruction");
    for (int32_t id : in.ids)
      if (id < 0 || id >= info_.vocab_size)
        return bad_request(input_name(i) + " holds token id " + std::to_string(id) +
                               ", outside the model's vocabulary [0, " + std::to_string(info_.vocab_size) + ")",
                           "input");
    out[i] = in.ids;
    if (out[i].size() > config_.max_input_tokens) {
      if (!params.truncate)
        return bad_request(input_name(i) + " has " + std::to_string(out[i].size()) +
                               " tokens, more than the maximum of " + std::to_string(config_.max_input_tokens) +
                               "; shorten it or pass \"truncate\": true",
                           "input", "context_length_exceeded");
      const size_t cut = out[i].size() - config_.max_input_tokens;
      if (params.truncate_left) out[i].erase(out[i].begin(), out[i].begin() + static_cast<ptrdiff_t>(cut));
      else out[i].resize(config_.max_input_tokens);
    }
  }
  return std::nullopt;
}

void EmbedService::embed(EmbedParams params, CancelFlag cancel, std::function<void(EmbedOutcome)> done) const {
  const size_t hidden = static_cast<size_t>(info_.hidden_size);
  if (params.dimensions && (*params.dimensions < 1 || static_cast<uint64_t>(*params.dimensions) > hidden))
    return done({bad_request("'dimensions' must be between 1 and " + std::to_string(hidden) + ", got " +
                                 std::to_string(*params.dimensions), "dimensions"), {}});
  if (params.normalize == false && info_.normalize)
    return done({bad_request("normalize=false is not available: this model's pipeline ends with a Normalize module, "
                             "so the engine returns unit vectors", "normalize"), {}});
  Job job;
  if (auto e = tokenize_inputs(params, job.inputs)) return done({std::move(e), {}});
  if (config_.request_timeout.count() > 0) job.deadline = SteadyClock::now() + config_.request_timeout;
  job.cancelled = std::move(cancel);
  const size_t dims = params.dimensions ? static_cast<size_t>(*params.dimensions) : hidden;
  const std::optional<bool> normalize = params.normalize;
  auto shared_done = std::make_shared<std::function<void(EmbedOutcome)>>(std::move(done));
  job.on_done = [this, dims, normalize, shared_done](StatusOr<JobResult> result) {
    // On the batcher thread: hand the post-processing to a worker so the engine is fed again at once.
    pool_.post([this, dims, normalize, shared_done, result = std::move(result)]() mutable {
      if (!result.ok()) return (*shared_done)({api_error_from_status(result.status()), {}});
      if (metrics_) metrics_->observe_queue_seconds(result->queue_seconds);
      const size_t hidden = result->hidden;
      const size_t n = result->vectors.size() / hidden;
      EmbedOutcome outcome;
      EmbedOutput& out = outcome.output;
      out.n = n;
      out.dims = dims;
      out.prompt_tokens = result->prompt_tokens;
      if (dims == hidden && (normalize != true || info_.normalize)) {
        out.vectors = std::move(result->vectors);  // as the engine gave them: renormalising would only add rounding
      } else {
        out.vectors.resize(n * dims);
        for (size_t i = 0; i < n; ++i) {
          std::span<const float> row(result->vectors.data() + i * hidden, hidden);
          std::span<float> dst(out.vectors.data() + i * dims, dims);
          // Matryoshka: the leading components, renormalised (unless TEI's normalize=false asked otherwise).
          if (normalize == false) std::copy_n(row.begin(), dims, dst.begin());
          else truncate_and_normalize(row.first(dims), dst);
        }
      }
      (*shared_done)(std::move(outcome));
    });
  };
  Status st = scheduler_.submit(std::move(job));
  if (!st.ok()) {
    ApiError e = api_error_from_status(st, "input");
    if (e.status != 400) e.param.clear();
    (*shared_done)({std::move(e), {}});
  }
}

}  // namespace embedserve
