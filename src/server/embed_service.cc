// EmbedService: prompts → tokens → scheduler → vectors, shared by the OpenAI and TEI endpoints.
#include "server/embed_service.h"

#include <memory>

#include "server/metrics.h"
#include "text/matryoshka.h"

namespace embedserve {
namespace {

// The request fields a client sets, as the text pipeline's messages should name them.
const OptionNames kRequestFields{"'prompt_name'", "'instruction'", "'dimensions'",
                                 "shorten it or pass \"truncate\": true"};

// An input's pipeline error as a 400 naming the input; over the limit is OpenAI's context_length_exceeded.
// Other pipeline errors (an id past the embedding table, text the tokenizer refuses) are TEI's tokenizer errors.
ApiError input_error(size_t index, const Status& st) {
  ApiError e = bad_request("input[" + std::to_string(index) + "]: " + st.message(), "input",
                           st.code() == ErrorCode::kOutOfRange ? "context_length_exceeded" : "invalid_value");
  if (st.code() != ErrorCode::kOutOfRange) e.tei = TeiKind::kTokenizer;
  return e;
}

}  // namespace

EmbedService::EmbedService(const TextEncoder& encoder, Scheduler& scheduler, WorkerPool& pool, const EngineInfo& info,
                           EmbedServiceConfig config, Metrics* metrics)
    : scheduler_(scheduler), pool_(pool), info_(info), config_(std::move(config)),
      pipeline_(encoder, config_.prompts, config_.max_input_tokens, info.vocab_size, kRequestFields),
      metrics_(metrics) {}

std::optional<std::string> EmbedService::resolve_model(const std::optional<std::string>& requested) const {
  if (!requested) return config_.served_names.front();  // lenient: clients that omit `model` get the default
  for (const auto& name : config_.served_names)
    if (*requested == name) return name;
  if (!config_.strict_model_name) return config_.served_names.front();  // one model: e.g. a hub id for a local dir
  return std::nullopt;
}

std::optional<ApiError> EmbedService::tokenize_inputs(const EmbedParams& params,
                                                      std::vector<std::vector<int32_t>>& out) const {
  const PromptChoice choice{params.prompt_name, params.instruction};
  // The field at fault: with both given it is the second one; otherwise only a prompt name can be wrong.
  const char* prompt_param = choice.instruction ? "instruction" : "prompt_name";
  auto prefix = pipeline_.prefix(choice);
  if (!prefix.ok()) return bad_request(prefix.status().message(), prompt_param);
  const Truncation truncation{params.truncate, params.truncate_left, 0};
  out.resize(params.inputs.size());
  for (size_t i = 0; i < params.inputs.size(); ++i) {
    const EmbedInput& in = params.inputs[i];
    if (in.is_ids && choice.given())
      return bad_request("a prompt cannot be applied to token ids; send text, or put the prompt's tokens in the ids",
                         prompt_param);
    if (in.is_ids && in.ids_sent > in.ids.size() && !truncation.enabled)  // the parser kept only the limit's worth
      return input_error(i, out_of_range("the input has " + std::to_string(in.ids_sent) + " tokens, more than the limit of " +
                                         std::to_string(config_.max_input_tokens) + "; " + kRequestFields.truncate_hint));
    const std::vector<int32_t>& ids_kept = truncation.keep_end && !in.ids_tail.empty() ? in.ids_tail : in.ids;
    auto ids = in.is_ids ? pipeline_.check_ids(ids_kept, truncation) : pipeline_.encode(*prefix, in.text, truncation);
    if (!ids.ok()) return input_error(i, ids.status());
    out[i] = std::move(ids).value();
  }
  return std::nullopt;
}

void EmbedService::embed(EmbedParams params, CancelFlag cancel, std::function<void(EmbedOutcome)> done) const {
  const size_t hidden = static_cast<size_t>(info_.hidden_size);
  if (params.dimensions)
    if (Status st = check_dimensions(*params.dimensions, hidden, kRequestFields); !st.ok())
      return done({bad_request(st.message(), "dimensions"), {}});
  Job job;
  // TEI's normalize: false asks for the pooled vector before the Normalize module: the engine skips it for this
  // job's sequences.
  job.raw_vectors = params.normalize == false && info_.normalize;
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
        // Matryoshka: the leading components, renormalised (unless TEI's normalize=false asked otherwise).
        out.vectors = truncate_rows(result->vectors, hidden, dims, normalize != false);
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

Status EmbedService::embed_requests(std::vector<EmbedParams> requests,
                                    std::function<void(std::vector<EmbedOutcome>)> done) const {
  const size_t hidden = static_cast<size_t>(info_.hidden_size);
  struct Slice {
    size_t first = 0, count = 0, tokens = 0;
    size_t dims = 0;
    std::optional<bool> normalize;
  };
  auto outcomes = std::make_shared<std::vector<EmbedOutcome>>(requests.size());
  auto slices = std::make_shared<std::vector<Slice>>(requests.size());
  Job job;
  job.bulk = true;
  for (size_t i = 0; i < requests.size(); ++i) {
    const EmbedParams& params = requests[i];
    if (params.dimensions)
      if (Status st = check_dimensions(*params.dimensions, hidden, kRequestFields); !st.ok()) {
        (*outcomes)[i].error = bad_request(st.message(), "dimensions");
        continue;
      }
    std::vector<std::vector<int32_t>> ids;
    if (auto e = tokenize_inputs(params, ids)) {
      (*outcomes)[i].error = std::move(e);
      continue;
    }
    Slice& sl = (*slices)[i];
    sl.first = job.inputs.size();
    sl.count = ids.size();
    sl.dims = params.dimensions ? static_cast<size_t>(*params.dimensions) : hidden;
    sl.normalize = params.normalize;
    for (auto& seq : ids) {
      sl.tokens += seq.size();
      job.inputs.push_back(std::move(seq));
    }
  }
  if (job.inputs.empty()) {
    done(std::move(*outcomes));
    return Status();
  }
  auto shared_done = std::make_shared<std::function<void(std::vector<EmbedOutcome>)>>(std::move(done));
  job.on_done = [this, outcomes, slices, shared_done](StatusOr<JobResult> result) {
    pool_.post([this, outcomes, slices, shared_done, result = std::move(result)]() mutable {
      for (size_t i = 0; i < outcomes->size(); ++i) {
        EmbedOutcome& o = (*outcomes)[i];
        if (o.error) continue;
        if (!result.ok()) {
          o.error = api_error_from_status(result.status());
          continue;
        }
        const Slice& sl = (*slices)[i];
        const size_t h = result->hidden;
        std::vector<float> rows(result->vectors.begin() + static_cast<std::ptrdiff_t>(sl.first * h),
                                result->vectors.begin() + static_cast<std::ptrdiff_t>((sl.first + sl.count) * h));
        o.output.n = sl.count;
        o.output.dims = sl.dims;
        o.output.prompt_tokens = sl.tokens;
        // The same post-processing as embed(): untouched rows unless Matryoshka truncation asks otherwise.
        o.output.vectors = sl.dims == h && (sl.normalize != true || info_.normalize)
                               ? std::move(rows)
                               : truncate_rows(rows, h, sl.dims, sl.normalize != false);
      }
      (*shared_done)(std::move(*outcomes));
    });
  };
  return scheduler_.submit(std::move(job));
}

}  // namespace embedserve
