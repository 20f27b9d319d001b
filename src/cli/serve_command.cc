// embedserve serve: the OpenAI-compatible embedding server. Takes SGLang's launch flags so that switching
// changes one word; wires model, tokenizer, engine, scheduler and HTTP server together, then waits for a signal.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/download_progress.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "cli/serve_replicas.h"
#include "embedserve/version.h"
#include "engine/engine_factory.h"
#include "ops/context.h"
#include "scheduler/busy_poll.h"
#include "scheduler/scheduler.h"
#include "scheduler/worker_pool.h"
#include "server/embed_service.h"
#include "jobs/batch_runner.h"
#include "jobs/file_storage.h"
#include "jobs/job_store.h"
#include "server/batch_embeddings.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/router.h"
#include "text/tokenizer_encoder.h"
#include "tokenizer/tokenizer.h"
#include "weights/model_config.h"
#include "weights/model_source.h"
#include "weights/sentence_transformers_config.h"

namespace embedserve::cli {
namespace {

// Requests parsed and waiting for a worker thread before new ones get 429 (reported as TEI's
// max_concurrent_requests). Bounds the memory held by bodies already read.
constexpr size_t kMaxPendingRequests = 1024;

// SGLang launch flags that mean nothing here: accepted, so a launch command switches by changing one word, and
// each answered with a one-line notice saying why it does nothing.
struct IgnoredFlag {
  const char* name;
  const char* value_name;  // "" for a switch
  const char* why;
};
constexpr IgnoredFlag kIgnoredFlags[] = {
    {"chat-template", "T", "not needed for embeddings"},
    {"enable-flashinfer", "", "attention kernels are built in"},
    {"attention-backend", "NAME", "attention kernels are built in"},
    {"kv-cache-dtype", "T", "an embedding keeps no KV cache"},
    {"disable-radix-cache", "", "an embedding keeps no KV cache, so there is no prefix cache to disable"},
    {"max-total-tokens", "N", "there is no KV cache pool to size; --max-queue-tokens bounds the tokens waiting"},
    {"max-running-requests", "N", "batches are bounded by tokens (--max-num-batched-tokens) and waiting inputs "
                                  "by --max-queue"},
    {"cuda-graph-max-bs", "N", "graphs are recorded per batch shape for batches of up to 1,024 tokens "
                               "(--disable-cuda-graph turns them off)"},
    {"enable-metrics", "", "/metrics is always served"},
    {"skip-server-warmup", "", "there is no warm-up request: the server is ready once the model is loaded"},
    {"random-seed", "N", "nothing is random: an input always gets the same vector"},
    {"watchdog-timeout", "SECONDS", "a request waiting longer than --request-timeout gets 504 instead"},
};

// SGLang's log levels; from warning up, the per-request access log is off.
constexpr const char* kLogLevels[] = {"debug", "info", "warning", "error", "critical"};

Flags make_flags() {
  std::vector<FlagSpec> specs = {
      {"model-path", "PATH", "model directory, or a Hugging Face hub id (looked up in the HF cache, else downloaded)", "",
       false, {"model"}},
      {"revision", "REV", "hub revision to download when --model-path is a hub id", "main"},
      {"host", "ADDR", "address or host name to listen on, on every address it resolves to (localhost: the "
                       "loopback); 0.0.0.0 listens on every IPv4 interface", "127.0.0.1"},
      {"port", "N", "TCP port to listen on", "30000"},
      {"served-model-name", "NAME", "model names reported and matched in `model` (the first is reported); "
                                    "default: the model directory's name, or the hub id", "", true},
      {"strict-model-name", "", "answer 404 to a request whose `model` is not a --served-model-name; by default, "
                                "as in SGLang, any name means the one model served", ""},
      {"api-key", "KEY", "require 'Authorization: Bearer KEY' on every route except /health and /metrics; with "
                         "several keys any one is accepted, and the files and batches of one key are invisible "
                         "to the others", "", true},
      {"data-dir", "DIR", "enable the Files and Batches API (/v1/files, /v1/batches): uploads, jobs and results "
                          "live here, job metadata and progress in DIR/jobs.sqlite3; unfinished jobs resume at "
                          "start (default: off)", ""},
      {"max-file-bytes", "N", "largest file POST /v1/files takes (streamed to disk, not held in memory); larger "
                              "ones get 413", "2147483648"},
      {"max-storage-bytes", "N", "bytes --data-dir may hold (uploads and results); an upload past it gets 507, a "
                                 "job that would pass it fails (0: no bound)", "0"},
      {"cors-allow-origins", "ORIGIN", "web origins (e.g. https://app.example.com, or *) browsers may call the "
                                       "API from: answers carry Access-Control-Allow-Origin and preflight "
                                       "OPTIONS requests are answered; none by default (no CORS headers)", "", true},
      {"device", "DEV", "auto, cpu or cuda; auto takes the GPU when one is present and built in", "auto"},
      {"dtype", "T", "precision: auto or bfloat16 (a GPU computes in bf16; the CPU keeps bf16 weights, f32 "
                     "activations), or float32 (f32 throughout: the parity mode); float16/half run as bfloat16", "auto"},
      {"quantization", "METHOD", kQuantizationHelp, ""},
      {"disable-cuda-graph", "", "launch every kernel of small batches instead of replaying the CUDA graph recorded "
                                 "for their shape (for debugging; slower)", ""},
      {"base-gpu-id", "N", "the first GPU to run on, in CUDA_VISIBLE_DEVICES order (replica r of --dp runs on "
                           "GPU N + r × the tensor parallel size)", "0"},
      {"max-num-batched-tokens", "N", "token budget of one engine call: inputs are packed without padding up "
                                      "to this many tokens (default: 16384 on a GPU, 2048 on the CPU, whose GEMMs "
                                      "need no more and whose workspace is resident memory)", ""},
      {"chunked-prefill-size", "N", "chunked prefill: an input longer than N tokens goes to the engine in chunks "
                                    "of N (keys and values kept between them), other requests' batches running "
                                    "between chunks, and stops at the next chunk once its client has gone; also "
                                    "sets --max-num-batched-tokens when that is not given (default: inputs longer "
                                    "than half the batch budget go in chunks of 1,024; -1 or 0: every input goes "
                                    "whole)",
       ""},
      {"context-length", "N", "longest input accepted, in tokens including the appended end token; longer "
                              "inputs are a 400 unless the request sets truncate (default: the model's "
                              "max_position_embeddings)", ""},
      {"max-queue", "N", "inputs that may wait for the engine at once; beyond it requests get 429 with "
                         "Retry-After (a request arriving at an empty queue is always admitted)", "65536"},
      {"max-queue-tokens", "N", "tokens that may wait for the engine at once (0: no limit)", "16777216"},
      {"max-inputs-per-request", "N", "most inputs one request may carry", "2048"},
      {"bulk-yield-tokens", "N", "while queries (requests of at most 1/8 of --max-num-batched-tokens tokens) keep "
                                 "arriving, bulk work (larger requests, batch jobs) fills at most N tokens of each "
                                 "engine call, so a query waits for a short call instead of a full one; with no "
                                 "query for a second bulk work fills calls again (0: never yield)", "256"},
      {"request-timeout", "SECONDS", "a request not answered after this long gets 504 at once, even while its "
                                     "inputs are in the engine; SIGTERM waits this long plus 5 s for requests in "
                                     "flight, then exits (0: never; 10 minutes)", "300"},
      {"max-body-bytes", "N", "largest request body; larger ones get 413 before they are read", "67108864"},
      {"max-body-bytes-in-flight", "N", "request body bytes held at once across all connections, from the "
                                        "header announcing them to the answer; beyond it new bodies get 503 "
                                        "with Retry-After before they are read", "268435456"},
      {"max-connections", "N", "connections open at once; more are answered 503 with Retry-After and "
                               "closed (default: the open-file limit less 64 in reserve, at most 10000)", ""},
      {"header-timeout", "SECONDS", "time from a request's first byte to the end of its headers; a slower "
                                    "client gets 408 and is disconnected", "30"},
      {"log-level", "LEVEL", "debug, info, warning, error or critical; from warning up the per-request access "
                             "log is off", "info"},
      {"threads", "N", "CPU threads for the engine's math (0: all cores)", "0"},
      {"http-threads", "N", "threads running the network loop (connections are asynchronous, so a few "
                            "serve thousands)", "2"},
      {"tokenizer-threads", "N", "threads that parse requests, tokenise and serialise answers (bodies of 1 MiB "
                                   "and more get N/2 threads of their own, at least one)", "2"},
      {"busy-poll-us", "MICROSECONDS", "how long an idle server thread (network, tokenizer, batcher) polls for new "
                                       "work before it sleeps: a request crosses four threads, and a sleeping one "
                                       "takes tens of µs to wake. Each polling thread holds a core meanwhile (auto: "
                                       "on a GPU 1.5 × one query's engine call as timed at start-up, 3000 to "
                                       "50000; 0 on the CPU, whose engine needs every core)", "auto"},
      {"dp", "N", "data parallel size: N copies of the model, one per GPU (or per --tp GPUs) from --base-gpu-id, "
                  "fed by one queue (each batch goes to the replica that frees first); a replica whose GPU fails "
                  "leaves the rotation and its batch is retried once on another. On the CPU, N copies splitting "
                  "--threads (for tests)",
       "1", false, {"dp-size"}},
      {"mem-fraction-static", "F", "accepted for SGLang compatibility; embedserve allocates only the weights "
                                   "and the batch workspace", ""},
      {"is-embedding", "", "accepted for SGLang compatibility; embedserve only embeds", ""},
      {"trust-remote-code", "", "accepted for SGLang compatibility; no model code is ever run", ""},
  };
  specs = with_tensor_parallel_flags(std::move(specs));
  for (const auto& f : kIgnoredFlags)
    specs.push_back({f.name, f.value_name, std::string("accepted for SGLang compatibility and ignored: ") + f.why, ""});
  return Flags("serve",
               "Serve a Qwen3-Embedding model over HTTP: OpenAI's POST /v1/embeddings, TEI's POST /embed and GET /info,\n"
               "POST /tokenize, GET /v1/models, GET /health and GET /metrics; with --data-dir also OpenAI's Files and\n"
               "Batches API (/v1/files, /v1/batches) for durable bulk jobs. Takes SGLang's launch flags.",
               std::move(specs));
}

void notice(const std::string& line) { std::fprintf(stderr, "embedserve serve: %s\n", line.c_str()); }

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + " MiB"; }

std::string milliseconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f ms", seconds * 1e3);
  return text;
}

// The default served name: a directory's own name, or the hub id exactly as given.
std::string default_served_name(const std::string& model_path) {
  std::filesystem::path p(model_path);
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) {
    while (!p.empty() && p.filename().empty()) p = p.parent_path();  // "models/foo/" → "foo"
    std::filesystem::path abs = std::filesystem::weakly_canonical(p, ec);
    return (ec ? p : abs).filename().string();
  }
  return model_path;
}

struct Settings {
  std::string model_path;
  std::optional<Device> device;  // none: auto, resolved in load_model (listing the GPUs initialises the driver)
  Precision precision = Precision::kAuto;
  Quantization quantization = Quantization::kNone;
  bool cuda_graphs = true;
  // --max-num-batched-tokens, else --chunked-prefill-size's; none: the device's default (batching_for).
  std::optional<size_t> max_num_batched_tokens;
  size_t max_queue, max_queue_tokens, max_inputs, max_body;
  size_t bulk_yield_tokens;
  bool chunked_prefill;            // long inputs go in chunks (when the model's pooling allows)
  long long chunked_prefill_size;  // --chunked-prefill-size: above 0 the chunk size; 0 when not given
  long long context_length;  // 0: the model's
  std::chrono::seconds timeout;
  int threads;
  int gpu;  // --base-gpu-id
  bool strict_model_name;
  size_t data_parallel = 1;  // --dp: engine replicas
  size_t http_threads, tokenizer_threads;
  std::optional<std::chrono::microseconds> busy_poll;  // --busy-poll-us, applied once the model has loaded; auto: none
  HttpServerOptions http;
  ServerConfig server;
  std::string data_dir;  // empty: no Files and Batches API
  uint64_t max_storage_bytes = 0;
};

StatusOr<Settings> read_settings(const Flags& flags) {
  Settings s;
  auto model_path = flags.get("model-path");
  if (!model_path) return invalid_argument("--model-path is required (see 'embedserve serve --help')");
  s.model_path = *model_path;
  EMBEDSERVE_ASSIGN_OR_RETURN(s.device, parse_device(flags.get_or("device", "auto")));
  std::string dtype = flags.get_or("dtype", "auto");
  if (dtype == "half" || dtype == "float16" || dtype == "f16") {  // SGLang's spellings; no f16 kernels here
    notice("--dtype " + dtype + " runs as bfloat16 (the same memory and speed; embedserve has no float16 kernels)");
    dtype = "bfloat16";
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(s.precision, parse_precision(dtype));
  EMBEDSERVE_ASSIGN_OR_RETURN(s.quantization, parse_quantization(flags.get_or("quantization", "")));
  s.cuda_graphs = !flags.has("disable-cuda-graph");
  EMBEDSERVE_ASSIGN_OR_RETURN(auto dp, flags.get_int("dp", 1, 1, 64));
  s.data_parallel = static_cast<size_t>(dp);
  EMBEDSERVE_ASSIGN_OR_RETURN(auto port, flags.get_int("port", 30000, 0, 65535));
  if (flags.has("max-num-batched-tokens")) {
    EMBEDSERVE_ASSIGN_OR_RETURN(auto budget, flags.get_int("max-num-batched-tokens", 1, 1, 1 << 24));
    s.max_num_batched_tokens = static_cast<size_t>(budget);
  }
  EMBEDSERVE_ASSIGN_OR_RETURN(auto context, flags.get_int("context-length", 0, 1, 1 << 24));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto max_queue, flags.get_int("max-queue", 65536, 1, 1ll << 40));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto max_queue_tokens, flags.get_int("max-queue-tokens", 1 << 24, 0, 1ll << 40));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto max_inputs, flags.get_int("max-inputs-per-request", 2048, 1, 1 << 24));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto bulk_yield, flags.get_int("bulk-yield-tokens", 256, 0, 1 << 24));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto timeout, flags.get_int("request-timeout", 300, 0, 1 << 30));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto max_body, flags.get_int("max-body-bytes", 64ll << 20, 1024, 1ll << 34));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto body_in_flight,
                              flags.get_int("max-body-bytes-in-flight", 256ll << 20, 1024, 1ll << 40));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto max_connections, flags.get_int("max-connections", 0, 1, 1 << 24));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto header_timeout, flags.get_double("header-timeout", 30, 0.001, 86400));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto threads, flags.get_int("threads", 0, 0, 4096));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto http_threads, flags.get_int("http-threads", 2, 1, 256));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto tok_threads, flags.get_int("tokenizer-threads", 2, 1, 256));
  // auto (resolved once the engine has loaded): poll on a GPU, where the host's cores are free, for longer than one
  // query's engine call (busy_poll::outlasting); on the CPU the cores run the engine (a core held by a polling
  // thread slows its OpenMP workers' every barrier: cli/thread_policy.h).
  if (flags.get_or("busy-poll-us", "auto") != "auto") {
    EMBEDSERVE_ASSIGN_OR_RETURN(auto poll, flags.get_int("busy-poll-us", 0, 0, 1000000));
    s.busy_poll = std::chrono::microseconds(poll);
  }
  if (flags.has("mem-fraction-static")) {
    EMBEDSERVE_ASSIGN_OR_RETURN(auto f, flags.get_double("mem-fraction-static", 0.9, 0.0, 1.0));
    (void)f;
    notice("--mem-fraction-static is accepted but not used: embedserve holds only the weights and one batch's "
           "workspace (sized for --max-num-batched-tokens; longer inputs go in chunks), with no KV cache pool to "
           "reserve");
  }
  for (const auto& f : kIgnoredFlags)
    if (flags.has(f.name)) notice(std::string("--") + f.name + " is ignored: " + f.why);
  const std::string log_level = flags.get_or("log-level", "info");
  const auto* level = std::find(std::begin(kLogLevels), std::end(kLogLevels), log_level);
  if (level == std::end(kLogLevels))
    return invalid_argument("--log-level must be one of debug, info, warning, error, critical; got '" + log_level + "'");
  EMBEDSERVE_ASSIGN_OR_RETURN(auto gpu, flags.get_int("base-gpu-id", 0, 0, 1023));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto chunked_prefill, flags.get_int("chunked-prefill-size", 0, -1, 1 << 24));
  // SGLang's flag: the chunk size, and the batch budget too unless that is given.
  if (chunked_prefill > 0 && !s.max_num_batched_tokens) s.max_num_batched_tokens = static_cast<size_t>(chunked_prefill);
  s.chunked_prefill = !flags.has("chunked-prefill-size") || chunked_prefill > 0;
  s.chunked_prefill_size = chunked_prefill > 0 ? chunked_prefill : 0;
  s.context_length = flags.has("context-length") ? context : 0;
  s.max_queue = static_cast<size_t>(max_queue);
  s.max_queue_tokens = static_cast<size_t>(max_queue_tokens);
  s.max_inputs = static_cast<size_t>(max_inputs);
  s.bulk_yield_tokens = static_cast<size_t>(bulk_yield);
  s.max_body = static_cast<size_t>(max_body);
  s.timeout = std::chrono::seconds(timeout);
  s.threads = static_cast<int>(threads);
  s.http_threads = static_cast<size_t>(http_threads);
  s.tokenizer_threads = static_cast<size_t>(tok_threads);
  s.gpu = static_cast<int>(gpu);
  s.http.access_log = level - std::begin(kLogLevels) <= 1;  // debug, info
  s.http.host = flags.get_or("host", "127.0.0.1");
  s.http.port = static_cast<uint16_t>(port);
  s.http.io_threads = s.http_threads;
  s.http.max_body_bytes = s.max_body;
  s.http.max_body_bytes_in_flight = static_cast<size_t>(body_in_flight);
  s.http.max_connections = static_cast<size_t>(max_connections);  // 0: the server's default
  s.http.header_timeout = std::chrono::milliseconds(static_cast<long long>(header_timeout * 1000));
  s.strict_model_name = flags.has("strict-model-name");
  s.server.served_names = flags.get_all("served-model-name");
  if (s.server.served_names.empty()) s.server.served_names = {default_served_name(s.model_path)};
  s.server.api_keys = flags.get_all("api-key");
  for (const auto& key : s.server.api_keys)
    if (key.empty()) return invalid_argument("--api-key needs a non-empty key");
  s.data_dir = flags.get_or("data-dir", "");
  EMBEDSERVE_ASSIGN_OR_RETURN(auto max_file, flags.get_int("max-file-bytes", 2ll << 30, 1, 1ll << 50));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto max_storage, flags.get_int("max-storage-bytes", 0, 0, 1ll << 60));
  s.http.max_file_bytes = static_cast<size_t>(max_file);
  s.max_storage_bytes = static_cast<uint64_t>(max_storage);
  if (!s.data_dir.empty()) s.http.upload_dir = (std::filesystem::path(s.data_dir) / "tmp").string();
  s.server.cors_allow_origins = flags.get_all("cors-allow-origins");
  s.server.version = EMBEDSERVE_VERSION;
  s.server.max_concurrent_requests = kMaxPendingRequests;
  s.server.tokenization_workers = s.tokenizer_threads;
  return s;
}

// The batch budget and the chunking of long inputs on `device`. Without --chunked-prefill-size, inputs longer than
// half the budget go in chunks of kDefaultChunkTokens, while shorter ones keep sharing full batches (a chunk rides
// alone).
struct Batching {
  size_t max_num_batched_tokens, chunk_tokens, chunk_above;
};
Batching batching_for(const Settings& s, Device device) {
  Batching b;
  b.max_num_batched_tokens = s.max_num_batched_tokens.value_or(default_max_num_batched_tokens(device));
  b.chunk_tokens = s.chunked_prefill_size > 0 ? static_cast<size_t>(s.chunked_prefill_size)
                                              : std::min(kDefaultChunkTokens, b.max_num_batched_tokens);
  b.chunk_above = s.chunked_prefill_size > 0 ? b.chunk_tokens : default_chunk_above(b.max_num_batched_tokens);
  return b;
}

// Everything that exists once the model is loaded, in construction order.
struct LoadedModel {
  std::unique_ptr<TokenizerEncoder> encoder;
  std::vector<std::unique_ptr<Engine>> engines;  // one per --dp replica
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<EmbedService> service;
  double tokenizer_seconds = 0;  // loading the tokenizer, beside the engines
  double driver_seconds = 0;     // the GPU driver's initialisation, before the engines (0 on the CPU)
  size_t max_num_batched_tokens = 0;  // the batch budget, the device's default unless a flag set it
};

// `no_replica_left` is called (on a batcher thread) when every engine replica has failed: serve then stops.
StatusOr<LoadedModel> load_model(const Flags& flags, const Settings& s, WorkerPool& pool, Metrics& metrics,
                                 std::function<void()> no_replica_left) {
  ModelSourceOptions source;
  source.environment = read_hub_environment();
  source.revision = flags.get_or("revision", "main");
  // Bytes, percentage and rate as embed shows them: a bar on a terminal, lines in a log.
  DownloadReporter download("embedserve serve: ");
  source.on_progress = [&download](const DownloadProgress& p) { download.update(p.file, p.bytes_done, p.bytes_total); };
  auto resolved = resolve_model_path(s.model_path, source);
  download.finish();
  EMBEDSERVE_ASSIGN_OR_RETURN(auto model_dir, std::move(resolved));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto config, load_model_config(model_dir / "config.json"));
  EMBEDSERVE_ASSIGN_OR_RETURN(auto st_config, load_sentence_transformers_config(model_dir));
  // The tokenizer loads on a thread of its own while the engine loads: start-up is the longer of the two.
  double tokenizer_seconds = 0;  // written by the loading thread, read after get()
  auto tokenizer_loading = std::async(std::launch::async, [dir = model_dir, &tokenizer_seconds] {
    const auto t = std::chrono::steady_clock::now();
    auto tokenizer = Tokenizer::load(dir);
    tokenizer_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    return tokenizer;
  });

  LoadedModel m;
  // The GPU driver initialises at the first CUDA call (listing the GPUs), before any engine: timed apart, since the
  // engine's own account starts after it and it is a large part of a start (0.21-0.25 s on the H200 machine, with
  // persistence mode on). Here, not before the server listens, so that it runs beside the tokenizer's load; with
  // --device auto it is resolving the device (whose default batch budget is the GPU's or the CPU's).
  const auto resolving = std::chrono::steady_clock::now();
  const Device device = resolve_device(s.device);
  if (device == Device::kCuda) (void)ops::visible_gpus();  // --device cuda: resolving it called nothing
  m.driver_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - resolving).count();
  const Batching batching = batching_for(s, device);
  m.max_num_batched_tokens = batching.max_num_batched_tokens;

  size_t context = s.context_length ? static_cast<size_t>(s.context_length)
                                    : static_cast<size_t>(config.max_position_embeddings);
  if (config.max_position_embeddings && context > static_cast<size_t>(config.max_position_embeddings))
    return invalid_argument("--context-length " + std::to_string(context) + " is more than the model's " +
                            "max_position_embeddings (" + std::to_string(config.max_position_embeddings) + ")");

  EngineOptions eopts;
  eopts.model_dir = model_dir;
  eopts.model_id = default_served_name(s.model_path);  // a directory's name or the hub id, as TEI's /info reports
  eopts.device = device;
  eopts.precision = s.precision;
  eopts.quantization = s.quantization;
  eopts.graph_max_tokens = s.cuda_graphs ? eopts.graph_max_tokens : 0;
  eopts.threads = s.threads;
  eopts.device_ordinal = s.gpu;
  SchedulerOptions so;
  so.max_num_batched_tokens = batching.max_num_batched_tokens;
  so.queue.max_inputs = s.max_queue;
  so.queue.max_tokens = s.max_queue_tokens;
  so.bulk_yield.tokens = s.bulk_yield_tokens;
  so.chunk_tokens = batching.chunk_tokens;
  so.chunk_above = batching.chunk_above;
  so.chunked_prefill = s.chunked_prefill;
  so.on_batch = [&metrics](const BatchReport& b) { metrics.observe_batch(b); };
  so.on_chunks_abandoned = [&metrics](size_t sent, size_t total) {
    metrics.observe_abandoned_chunks(sent, total);
    notice("dropped a " + std::to_string(total) + "-token input after " + std::to_string(sent) +
           " tokens: its client left or its deadline passed");
  };
  // The workspace holds the largest call the scheduler makes: a batch or a chunk, not the context (a model whose
  // pooling takes no chunks, or chunked prefill turned off, grows it to the longest input).
  eopts.workspace_tokens = workspace_tokens_for(so, context);
  eopts.longest_input_tokens = context;
  EMBEDSERVE_RETURN_IF_ERROR(apply_engine_environment(eopts));
  EMBEDSERVE_RETURN_IF_ERROR(apply_tensor_parallel_flags(flags, eopts));
  auto engines = load_replicas(eopts, s.data_parallel, notice);
  auto tokenizer = tokenizer_loading.get();  // joined before any error returns: the thread reads model_dir
  EMBEDSERVE_RETURN_IF_ERROR(engines.status());
  EMBEDSERVE_RETURN_IF_ERROR(tokenizer.status());
  m.engines = std::move(engines).value();
  m.encoder = std::make_unique<TokenizerEncoder>(std::move(tokenizer).value());
  m.tokenizer_seconds = tokenizer_seconds;
  so.on_replica_failed = [replicas = m.engines.size()](size_t replica, const Status& fault, size_t left) {
    notice("engine replica " + std::to_string(replica) + " failed and left the rotation (" + fault.message() + "); " +
           std::to_string(left) + " of " + std::to_string(replicas) + " replicas serve" +
           (left ? "; its batch is retried once on another" : ""));
  };
  so.on_all_replicas_failed = [stop = std::move(no_replica_left)](const Status&) { stop(); };
  std::vector<Engine*> replicas;
  for (const auto& engine : m.engines) replicas.push_back(engine.get());
  m.scheduler = std::make_unique<Scheduler>(std::move(replicas), so);

  EmbedServiceConfig cfg;
  cfg.served_names = s.server.served_names;
  cfg.strict_model_name = s.strict_model_name;
  cfg.max_input_tokens = context;
  cfg.max_inputs_per_request = s.max_inputs;
  cfg.request_timeout = s.timeout;
  cfg.prompts = {st_config.prompts, st_config.default_prompt_name};
  cfg.replica_devices = describe_replicas(m.engines, eopts);
  m.service = std::make_unique<EmbedService>(*m.encoder, *m.scheduler, pool, m.engines.front()->info(), cfg, &metrics);
  return m;
}

int run(const Flags& flags) {
  auto settings = read_settings(flags);
  if (!settings.ok()) return flags.fail(settings.status());
  // Request bodies and their texts (up to --max-body-bytes each) are large, short-lived buffers made and freed on
  // different threads. glibc's default raises its mmap threshold to the largest block freed (up to 32 MiB), after
  // which such buffers come from per-thread arenas that keep their pages: measured, six 20 MB requests in a row
  // left the peak RSS 195 MB higher and climbing, where a fixed 1 MiB threshold keeps it at +69 MB, flat (every
  // block of 1 MiB or more is its own mapping, returned to the system when freed).
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  const Settings& s = *settings;
  const auto t0 = std::chrono::steady_clock::now();

  // A write past a file-size limit (RLIMIT_FSIZE, e.g. a quota'd container) should fail that write with EFBIG,
  // which fails one batch job with a clear status, rather than kill the server with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  Metrics metrics;
  auto pool = std::make_unique<WorkerPool>(s.tokenizer_threads, kMaxPendingRequests);
  // Large bodies (Router::kLargeBodyBytes and up) and the jobs routes, which wait on the disk, get threads of their
  // own, half as many: they cannot hold the threads small requests need, and two huge texts at once cost at most
  // those threads.
  auto large_pool = std::make_unique<WorkerPool>(std::max<size_t>(1, s.tokenizer_threads / 2), kMaxPendingRequests);
  Router router(s.server, metrics, *pool, large_pool.get());
  // The Files and Batches API: the store opens before the server listens, so uploads and lookups work while the
  // model loads; the runner starts once the model is there.
  std::optional<jobs::JobStore> job_store;
  std::optional<jobs::FileStorage> file_storage;
  std::optional<JobsContext> jobs_context;
  std::atomic<jobs::BatchRunner*> runner_ptr{nullptr};
  if (!s.data_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(s.data_dir, ec);
    auto store = jobs::JobStore::open(s.data_dir);
    if (!store.ok()) return flags.fail(store.status());
    auto storage = jobs::FileStorage::open(s.data_dir, s.max_storage_bytes);
    if (!storage.ok()) return flags.fail(storage.status());
    job_store.emplace(std::move(store).value());
    file_storage.emplace(std::move(storage).value());
    jobs_context.emplace(JobsContext{*job_store, *file_storage, [&runner_ptr] {
                                       if (auto* r = runner_ptr.load()) r->wake();
                                     }});
    router.set_jobs(&*jobs_context);
  }
  HttpServer server(s.http, router);
  // Listen first: /health answers 503 while the model loads, so orchestrators see the process is alive.
  if (Status st = server.start(); !st.ok()) return flags.fail(st);
  // An IPv6 literal goes in brackets (RFC 3986 §3.2.2), so the printed URL can be pasted into a client as is.
  const std::string host = s.http.host.find(':') == std::string::npos ? s.http.host : "[" + s.http.host + "]";
  notice("listening on http://" + host + ":" + std::to_string(server.port()) + "; loading " + s.model_path);
  if (job_store)
    notice("files and batch jobs under " + std::filesystem::absolute(s.data_dir).string() +
           " (metadata and progress in jobs.sqlite3, WAL); uploads up to " + std::to_string(s.http.max_file_bytes) +
           " bytes (--max-file-bytes), storage " +
           (s.max_storage_bytes ? "up to " + std::to_string(s.max_storage_bytes) + " bytes" : std::string("unbounded")) +
           " (--max-storage-bytes)");
  else
    notice("the Files and Batches API is off (no --data-dir)");

  // The load runs on a thread of its own so that SIGINT or SIGTERM ends it within a second: a download or weight
  // upload has no point where it could stop early, and nothing of it is worth keeping (a download resumes from
  // its .incomplete file). Nothing was served, so this is a clean stop: exit status 0, as after a drain.
  auto loading = std::async(std::launch::async, [&] {
    return load_model(flags, s, *pool, metrics, [&server] {
      notice("every engine replica has failed: stopping (exit status 1)");
      server.request_stop();
    });
  });
  while (loading.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
    if (!server.stop_requested()) continue;
    const int signal = server.stop_signal();
    notice(std::string(signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "stop requested") +
           " while loading the model: exiting without finishing the load");
    std::_Exit(0);
  }
  auto model = loading.get();
  if (!model.ok()) {
    server.shutdown(std::chrono::milliseconds(0));
    return flags.fail(model.status());
  }
  const EngineInfo& info = model->engines.front()->info();
  double query_seconds = 0;  // the slowest replica's
  for (const auto& engine : model->engines) query_seconds = std::max(query_seconds, engine->info().query_seconds);
  const std::chrono::microseconds poll =
      s.busy_poll ? *s.busy_poll
                  : info.device == Device::kCuda ? busy_poll::outlasting(query_seconds) : std::chrono::microseconds(0);
  busy_poll::set(poll);
  router.set_ready(model->service.get());
  std::unique_ptr<EmbeddingsBatchEndpoint> batch_endpoint;
  std::unique_ptr<jobs::BatchRunner> runner;
  if (job_store) {
    batch_endpoint = std::make_unique<EmbeddingsBatchEndpoint>(*model->service);
    jobs::RunnerOptions ro;
    ro.log = [](const std::string& line) { notice(line); };
    runner = std::make_unique<jobs::BatchRunner>(*job_store, *file_storage, *batch_endpoint, ro);
    if (Status st = runner->start(); !st.ok()) {
      server.shutdown(std::chrono::milliseconds(0));
      return flags.fail(st);
    }
    runner_ptr.store(runner.get());
  }
  const double ready_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::string names;
  for (const auto& n : s.server.served_names) names += (names.empty() ? "" : ", ") + n;
  std::fprintf(stderr,
               "embedserve serve: ready in %.2f s: model %s (%s, hidden %d, %s pooling), weights stored %s, held %s, "
               "on %s (%s); engine memory %s (weights %s, workspace %s for %zu tokens), process resident %s; served "
               "as %s; batch budget %zu tokens, inputs up to %zu tokens; %zu replica%s: %s\n",
               ready_s, info.model_id.c_str(), info.architecture.c_str(), info.hidden_size, pooling_name(info.pooling),
               info.dtype.c_str(), info.weights_dtype.c_str(), device_name(info.device), info.backend.c_str(),
               mib(info.memory_bytes).c_str(), mib(info.weight_bytes).c_str(), mib(info.workspace_bytes).c_str(),
               info.workspace_tokens, mib(resident_bytes()).c_str(), names.c_str(), model->max_num_batched_tokens,
               model->service->config().max_input_tokens, model->engines.size(),
               model->engines.size() == 1 ? "" : "s", replicas_line(model->service->config().replica_devices).c_str());
  // Where the start went (replica 0's engine), so a slow start says which part to look at.
  const EngineInfo::LoadTimes& lt = info.load_times;
  std::fprintf(stderr,
               "embedserve serve: start-up: driver %.2f s, then engine %.2f s (device context %.2f s, checkpoint "
               "%.2f s, weights and workspace %.2f s, query graphs %.2f s); tokenizer %.2f s, beside them\n",
               model->driver_seconds, lt.device + lt.checkpoint + lt.weights + lt.graphs, lt.device, lt.checkpoint,
               lt.weights, lt.graphs, model->tokenizer_seconds);
  if (poll.count() > 0)
    notice("idle server threads poll " + std::to_string(poll.count()) +
           " µs for new work before they sleep (--busy-poll-us; 0 turns it off)" +
           (query_seconds > 0 ? "; one 16-token query's engine call took " + milliseconds(query_seconds) : ""));

  server.wait_for_stop_request();
  // A server whose every replica failed stops like any other, but says so in its exit status (a supervisor
  // restarts it); the scheduler has answered every request it held with 503.
  const bool replicas_lost = model->scheduler->replicas_up() == 0;
  notice("stopping: no new connections; finishing requests in flight");
  const auto grace = s.timeout.count() > 0 ? std::chrono::milliseconds(s.timeout) + std::chrono::seconds(5)
                                           : std::chrono::milliseconds(std::chrono::minutes(10));
  const bool drained = server.shutdown(grace);
  if (runner) {
    // Commits nothing more (what is not committed resumes at the next start); joined after abandon() below has
    // answered the chunks it waits for.
    runner_ptr.store(nullptr);
    runner->request_stop();
  }
  // Every request was answered, or the grace period is over: what is left in the scheduler (inputs whose clients
  // left or whose deadline passed) is dropped at its next chunk. An engine call cannot be interrupted, and once no
  // client waits for it (or the grace period is spent) it is not worth waiting for: after at most 2 s for the
  // batcher to come back, the process exits without it (no destructors: the batcher still uses the engine).
  if (!model->scheduler->abandon(drained ? std::chrono::seconds(2) : std::chrono::milliseconds(100))) {
    notice(drained ? "stopped cleanly, cutting short an engine call whose requests were already answered or gone"
                   : "stopped with requests still in flight after the grace period, and an engine call running");
    std::_Exit(drained && !replicas_lost ? 0 : 1);
  }
  if (runner) runner->stop();
  large_pool.reset();  // runs the last tasks before the service they reference goes away
  pool.reset();        // and their completions
  if (replicas_lost) {
    notice("stopped: every engine replica had failed");
    return 1;
  }
  notice(drained ? "stopped cleanly" : "stopped with requests still in flight after the grace period");
  return drained ? 0 : 1;
}

}  // namespace

int run_serve(int argc, char** argv) {
  Flags flags = make_flags();
  if (auto done = flags.parse_or_exit(argc, argv)) return *done;
  return run(flags);
}

}  // namespace embedserve::cli
