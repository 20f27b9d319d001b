// Hugging Face text-embeddings-inference endpoints: POST /embed and GET /info, so TEI clients can switch.
#include <span>

#include "server/handlers.h"
#include "server/json_writer.h"
#include "server/replica_report.h"

namespace embedserve {
namespace {

// TEI's model_dtype is the dtype the model runs in (its --dtype), spelled TEI's way: here the engine's compute
// precision, not the checkpoint's storage (a bf16 checkpoint on the CPU runs in f32, and /info once said bf16).
// TEI's model_dtype: the dtype the model's weights are held in (bf16 on the CPU's default mode, whose activations
// are f32: /info's backend says so), not the checkpoint's storage.
const char* tei_dtype(const std::string& dtype) {
  if (dtype == "bf16") return "bfloat16";
  if (dtype == "f16") return "float16";
  return "float32";
}

const char* tei_pooling(Pooling p) {
  switch (p) {
    case Pooling::kLastToken: return "last_token";
    case Pooling::kMean: return "mean";
    case Pooling::kCls: return "cls";
  }
  return "last_token";
}

}  // namespace

std::string render_tei_embeddings(const EmbedOutput& out) {
  std::string body;
  body.reserve(2 + out.n * (3 + out.dims * 13));
  JsonWriter w(body);
  w.begin_array();
  for (size_t i = 0; i < out.n; ++i) w.float_array(std::span<const float>(out.vectors.data() + i * out.dims, out.dims));
  w.end_array();
  return body;
}

void handle_tei_embed(const EmbedService& service, const ServerRequest& req, CancelFlag cancel, Respond respond) {
  EmbedParams params;
  if (auto e = parse_tei_embed_request(req.body, service.config().max_inputs_per_request, service.info().hidden_size,
                                         params, service.config().max_input_tokens))
    return respond(error_response(*e, ErrorShape::kTei));
  const size_t n_inputs = params.inputs.size();
  auto done = [respond = std::move(respond), n_inputs, model = service.config().served_names.front()](EmbedOutcome outcome) {
    ServerResponse r;
    if (!outcome.error) outcome.error = non_finite_vector_error(outcome.output, model);
    if (outcome.error) {
      r = error_response(*outcome.error, ErrorShape::kTei);
    } else {
      r.body = render_tei_embeddings(outcome.output);
      r.tokens = outcome.output.prompt_tokens;
    }
    r.inputs = n_inputs;
    respond(std::move(r));
  };
  service.embed(std::move(params), std::move(cancel), std::move(done));
}

ServerResponse tei_info_response(const EmbedService& service, const ServerConfig& config) {
  const EngineInfo& info = service.info();
  ServerResponse r;
  JsonWriter w(r.body);
  w.begin_object();
  w.key("model_id");
  w.string(info.model_id);
  w.key("model_sha");
  w.null();
  // TEI's model_dtype is the dtype the model runs in: the weights as held (a bf16 checkpoint in f32 mode says
  // float32), with the stored dtype where an engine does not say.
  w.key("model_dtype");
  // Under fp8 the weights are e4m3, which TEI's enum lacks: the dtype it computes in, and `quantization` says fp8.
  w.string(info.quantization == Quantization::kFp8
               ? (info.precision == Precision::kBF16 ? "bfloat16" : "float32")
               : tei_dtype(info.weights_dtype.empty() ? info.dtype : info.weights_dtype));
  w.key("quantization");
  if (info.quantization == Quantization::kFp8) w.string("fp8");
  else w.null();
  // embedserve's own: the memory the engine holds (what --quantization fp8 shrinks), as the ready line says it.
  w.key("memory");
  w.begin_object();
  w.key("weights_dtype");
  w.string(info.weights_dtype);
  w.key("weights_bytes");
  w.integer(static_cast<int64_t>(info.weight_bytes));
  w.key("workspace_bytes");
  w.integer(static_cast<int64_t>(info.workspace_bytes));
  w.end_object();
  w.key("model_type");
  w.begin_object();
  w.key("embedding");
  w.begin_object();
  w.key("pooling");
  w.string(tei_pooling(info.pooling));
  w.end_object();
  w.end_object();
  w.key("max_concurrent_requests");
  w.integer(static_cast<int64_t>(config.max_concurrent_requests));
  w.key("max_input_length");
  w.integer(static_cast<int64_t>(service.config().max_input_tokens));
  w.key("max_batch_tokens");
  w.integer(static_cast<int64_t>(service.max_num_batched_tokens()));  // the packing budget, not the engine's workspace
  w.key("max_batch_requests");
  w.null();
  w.key("max_client_batch_size");
  w.integer(static_cast<int64_t>(service.config().max_inputs_per_request));
  w.key("auto_truncate");
  w.boolean(false);
  w.key("tokenization_workers");
  w.integer(static_cast<int64_t>(config.tokenization_workers));
  w.key("version");
  w.string(config.version);
  w.key("sha");
  w.null();
  w.key("docker_label");
  w.null();
  // Not TEI's: where and how the engine computes (device, weights and activations dtypes, GEMM kernels).
  w.key("backend");
  w.string(info.backend);
  // Not TEI's: the engine replicas (--dp), where each runs and whether it still serves.
  const std::vector<ReplicaStatus> replicas = service.replicas();
  w.key("data_parallel_size");
  w.integer(static_cast<int64_t>(replicas.size()));
  w.key("replicas");
  write_replicas(w, replicas, service.config().replica_devices);
  w.end_object();
  return r;
}

}  // namespace embedserve
