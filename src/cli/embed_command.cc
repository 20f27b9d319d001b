// embedserve embed: embeds a file of texts (JSON Lines or plain text) into .jsonl or .npy, in input order.
//
// Every input is read, checked and tokenised before the model runs — through the text pipeline the server
// uses (src/text/) — so a bad line 90,000 fails in seconds, not after an hour of compute. Then windows of
// texts go to the engine through the Scheduler, the same packer the server batches with; within a window
// texts are sorted by length (similar lengths share a batch, which keeps the attention work per token even),
// and each window's vectors are written back in input order.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <future>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/embed_batch.h"
#include "cli/embed_io.h"
#include "cli/engine_flags.h"
#include "cli/flags.h"
#include "cli/intermediates_dump.h"
#include "cli/download_progress.h"
#include "cli/progress_bar.h"
#include "engine/engine.h"
#include "engine/engine_factory.h"
#include "scheduler/scheduler.h"
#include "text/matryoshka.h"
#include "text/text_pipeline.h"
#include "text/tokenizer_encoder.h"
#include "tokenizer/tokenizer.h"
#include "weights/model_config.h"
#include "weights/model_source.h"
#include "weights/sentence_transformers_config.h"

namespace embedserve::cli {
namespace {

constexpr size_t kWindow = 4096;  // texts per scheduler job; bounds the vectors held before writing
constexpr size_t kWindowsInFlight = 2;  // the batcher packs the next window while this thread writes one

// The flags the text pipeline's messages name.
const OptionNames kFlagNames{"--prompt-name", "--instruction", "--dimensions", "pass --max-length N to truncate"};

Flags make_flags() {
  return Flags(
      "embed",
      "Embeds every text of --input into --output, one vector per text in input order.\n"
      "Input: JSON Lines ({\"text\": \"...\"} per line; blank lines skipped) when the name ends in .jsonl/.ndjson/.json,\n"
      "plain text (one text per line; an empty line is an empty text, which still embeds) when it ends in .txt;\n"
      "otherwise JSON Lines if the first non-blank line starts with '{'. '-' reads standard input.\n"
      "Output: .jsonl ({\"index\": i, \"embedding\": [...]} per line) or .npy (float32 [n, dimensions]).\n"
      "A text longer than the model's maximum (max_position_embeddings) is an error naming its line unless\n"
      "--max-length is given, which truncates every text to that many tokens (the end-of-text token is kept).\n"
      "OpenAI batch input (lines of {\"custom_id\", \"method\": \"POST\", \"url\": \"/v1/embeddings\", \"body\"}) is\n"
      "recognised by its first line and answered in OpenAI's batch output format: one output line per request to\n"
      "--output (.jsonl), failed requests to --error-output; the exit code is 3 when some request failed.",
      with_tensor_parallel_flags({
          {"model-path", "PATH", "model directory, or a hub id such as Qwen/Qwen3-Embedding-0.6B", ""},
          {"input", "FILE", "texts to embed ('-' for standard input)", ""},
          {"output", "FILE", "where to write the vectors: NAME.jsonl, NAME.npy, or - for JSON Lines on standard output", ""},
          {"device", "DEVICE", "cpu, cuda, or auto (cuda when this build has it and a GPU is present)", "auto"},
          {"dtype", "DTYPE", "precision: auto or bf16 (CUDA computes in bf16; the CPU keeps bf16 weights, f32 activations), or f32 (f32 throughout: the parity mode)", "auto"},
          {"quantization", "METHOD", kQuantizationHelp, ""},
          {"dimensions", "N", "keep the first N components and re-normalise (Matryoshka); 1..hidden size", ""},
          {"prompt-name", "NAME", "prefix each text with this prompt of config_sentence_transformers.json (e.g. query)", ""},
          {"instruction", "TEXT", "prefix each text with Qwen3-Embedding's 'Instruct: TEXT\\nQuery:'", ""},
          {"max-length", "N", "truncate each text to N tokens, end-of-text token included", ""},
          {"max-num-batched-tokens", "N", "token budget of one engine call, as in serve (default: 16384 on a GPU, "
                                          "2048 on the CPU; a longer text goes in chunks of 1,024)", "", false,
           {"batch-tokens"}},
          {"threads", "N", "CPU threads (0: all cores)", "0"},
          {"revision", "REV", "hub revision when --model-path is a hub id", "main"},
          {"error-output", "FILE", "batch input only: where failed requests' lines go (default: the output's name "
                                   "with .errors before its extension; not created when none failed)", ""},
          {"dump-intermediates", "DIR", "debugging: also embed each text alone and write every named intermediate "
                                        "of its forward pass to DIR (tools/compare_intermediates.py reads it)", ""},
      }));
}

struct Tokenized {
  std::vector<std::vector<int32_t>> ids;  // int32 [n_texts][len_i], in input order
  size_t tokens = 0;
  size_t longest = 0;
};

// Tokenises every text through the text pipeline; errors name the file and line.
StatusOr<Tokenized> tokenize_all(const std::vector<InputText>& texts, const TextPipeline& pipeline,
                                 const std::string& prefix, const Truncation& truncation,
                                 const std::string& input_name) {
  Tokenized out;
  out.ids.reserve(texts.size());
  for (const auto& t : texts) {
    auto ids = pipeline.encode(prefix, t.text, truncation);
    if (!ids.ok()) return ids.status().with_context(input_name + ":" + std::to_string(t.line));
    out.tokens += ids->size();
    out.longest = std::max(out.longest, ids->size());
    out.ids.push_back(std::move(ids).value());
  }
  return out;
}

// One window of texts in the scheduler: its texts go in longest first, and `order` says where each row returns.
struct Window {
  size_t first = 0;           // input index of the window's first text
  std::vector<size_t> order;  // order[j]: the input index whose vector is row j of the result
  std::future<StatusOr<JobResult>> result;
};

// Moves texts [first, end) into one scheduler job.
Window submit_window(Scheduler& scheduler, Tokenized& texts, size_t first, size_t end, const CancelFlag& cancel) {
  Window w;
  w.first = first;
  w.order.resize(end - first);
  std::iota(w.order.begin(), w.order.end(), first);
  std::stable_sort(w.order.begin(), w.order.end(),
                   [&](size_t a, size_t b) { return texts.ids[a].size() > texts.ids[b].size(); });
  Job job;
  job.inputs.reserve(w.order.size());
  for (size_t i : w.order) job.inputs.push_back(std::move(texts.ids[i]));
  job.cancelled = cancel;
  w.result = scheduler.submit_future(std::move(job));
  return w;
}

// Waits for a window and writes its vectors in input order, cut to `dims` components.
Status write_window(Window& w, size_t hidden, size_t dims, EmbeddingWriter& writer) {
  EMBEDSERVE_ASSIGN_OR_RETURN(JobResult result, w.result.get());
  const std::vector<float> rows =  // f32 [window, dims], longest text first
      dims == hidden ? std::move(result.vectors) : truncate_rows(result.vectors, hidden, dims);
  std::vector<size_t> row_of(w.order.size());
  for (size_t j = 0; j < w.order.size(); ++j) row_of[w.order[j] - w.first] = j;
  for (size_t row : row_of) EMBEDSERVE_RETURN_IF_ERROR(writer.write_row({rows.data() + row * dims, dims}));
  return Status();
}

// Embeds every text through a Scheduler on `engine` and streams the vectors, in input order, to `writer`.
Status embed_all(Engine& engine, Tokenized& texts, size_t max_num_batched_tokens, size_t dims,
                 EmbeddingWriter& writer) {
  const size_t n = texts.ids.size();
  const size_t hidden = static_cast<size_t>(engine.info().hidden_size);
  // Counted in tokens, not texts: longest texts go first, so a text count would make the early ETA
  // wildly pessimistic, while tokens track the work.
  ProgressBar bar("embedding", texts.tokens, "tokens");
  // Advanced on the batcher thread; the bar is drawn by one thread only, the ticker, which draws the first frame
  // at once and redraws four times a second, so the clock moves during a long batch (one batch at the default
  // budget takes a minute on a CPU) instead of the bar appearing only when it ends.
  std::atomic<size_t> texts_done{0}, tokens_done{0};
  std::atomic<bool> done{false};
  auto note = [&] { return std::to_string(texts_done.load()) + "/" + std::to_string(n) + " texts"; };
  std::thread ticker;
  if (bar.enabled())
    ticker = std::thread([&] {
      bar.redraw(note());
      while (!done.load()) {
        for (int i = 0; i < 5 && !done.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
        bar.update(tokens_done.load(), note());
      }
    });
  SchedulerOptions options = default_scheduler_options(max_num_batched_tokens);
  options.on_batch = [&](const BatchReport& b) {
    if (!b.ok) return;
    if (!b.partial_chunk) texts_done += b.sequences;  // a long text's earlier chunks are not texts done
    tokens_done += b.tokens;
  };
  Scheduler scheduler(engine, options);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  std::deque<Window> in_flight;
  Status st;
  for (size_t next = 0; st.ok() && (next < n || !in_flight.empty());) {
    for (; next < n && in_flight.size() < kWindowsInFlight; next = std::min(n, next + kWindow))
      in_flight.push_back(submit_window(scheduler, texts, next, std::min(n, next + kWindow), cancel));
    st = write_window(in_flight.front(), hidden, dims, writer);
    in_flight.pop_front();
  }
  if (!st.ok()) cancel->store(true);  // a failed run stops: the windows still queued are dropped, not computed
  scheduler.shutdown();
  done.store(true);
  if (ticker.joinable()) ticker.join();
  if (!st.ok()) return st;
  bar.update(tokens_done.load(), note());
  bar.finish(note());
  return Status();
}

int run(const Flags& flags) {
  auto model_path = flags.get("model-path");
  auto input = flags.get("input");
  auto output = flags.get("output");
  if (!model_path || !input || !output)
    return flags.fail(invalid_argument("--model-path, --input and --output are required (see 'embedserve embed --help')"));
  EngineOptions eopts;
  if (Status st = apply_engine_flags(flags, eopts); !st.ok()) return flags.fail(st);
  auto threads = flags.get_int("threads", 0, 0, 4096);
  if (!threads.ok()) return flags.fail(threads.status());
  auto out_format = output_format_for(*output);
  if (!out_format.ok()) return flags.fail(out_format.status());

  if (*input != "-" && is_batch_input(*input)) return run_embed_batch(flags, *model_path, *input, *output, eopts);
  // The device decides the default budget, so it is resolved here (once: create_engine gets it).
  const Device on = resolve_device(eopts.device);
  auto max_num_batched_tokens = flags.get_int(
      "max-num-batched-tokens", static_cast<long long>(default_max_num_batched_tokens(on)), 1, 1 << 24);
  if (!max_num_batched_tokens.ok()) return flags.fail(max_num_batched_tokens.status());

  // Inputs first: a typo in --input should not wait for a model download.
  auto content = read_input_file(*input);
  if (!content.ok()) return flags.fail(content.status());
  const std::string input_name = *input == "-" ? "<stdin>" : *input;
  auto texts = parse_input(*content, detect_input_format(*input, *content), input_name);
  if (!texts.ok()) return flags.fail(texts.status());
  content->clear();
  content->shrink_to_fit();

  ModelSourceOptions source;
  source.environment = read_hub_environment();
  source.revision = flags.get_or("revision", "main");
  DownloadReporter download("embedserve embed: ");  // called on the downloading thread while we wait
  source.on_progress = [&download](const DownloadProgress& p) { download.update(p.file, p.bytes_done, p.bytes_total); };
  auto model_dir = resolve_model_path(*model_path, source);
  download.finish();
  if (!model_dir.ok()) return flags.fail(model_dir.status());
  auto config = load_model_config(*model_dir / "config.json");
  if (!config.ok()) return flags.fail(config.status());
  auto st_config = load_sentence_transformers_config(*model_dir);
  if (!st_config.ok()) return flags.fail(st_config.status());
  const size_t hidden = static_cast<size_t>(config->hidden_size);
  auto dims = flags.get_int("dimensions", config->hidden_size, std::numeric_limits<long long>::min(),
                            std::numeric_limits<long long>::max());
  if (!dims.ok()) return flags.fail(dims.status());
  if (Status st = check_dimensions(*dims, hidden, kFlagNames); !st.ok()) return flags.fail(st);
  auto max_length = flags.get_int("max-length", 0, 1, config->max_position_embeddings);
  if (!max_length.ok()) return flags.fail(max_length.status());

  auto tokenizer = Tokenizer::load(*model_dir);
  if (!tokenizer.ok()) return flags.fail(tokenizer.status());
  const TokenizerEncoder encoder(std::move(*tokenizer));
  const TextPipeline pipeline(encoder, {st_config->prompts, st_config->default_prompt_name},
                              static_cast<size_t>(config->max_position_embeddings), config->vocab_size, kFlagNames);
  auto prefix = pipeline.prefix({flags.get("prompt-name"), flags.get("instruction")});
  if (!prefix.ok()) return flags.fail(prefix.status());
  const Truncation truncation{flags.has("max-length"), false, static_cast<size_t>(*max_length)};
  auto tokenized = tokenize_all(*texts, pipeline, *prefix, truncation, input_name);
  if (!tokenized.ok()) return flags.fail(tokenized.status());
  std::vector<std::string> dumped_texts;  // the manifest of --dump-intermediates names what was embedded
  if (flags.has("dump-intermediates"))
    for (const InputText& t : *texts) dumped_texts.push_back(*prefix + t.text);
  texts->clear();
  const size_t n_texts = tokenized->ids.size(), n_tokens = tokenized->tokens;

  eopts.model_dir = *model_dir;
  eopts.model_id = *model_path;
  eopts.device = on;
  eopts.threads = static_cast<int>(*threads);
  // The workspace holds a batch or a chunk; the longest text alone only where the model takes no chunks.
  eopts.workspace_tokens =
      workspace_tokens_for(default_scheduler_options(static_cast<size_t>(*max_num_batched_tokens)), tokenized->longest);
  eopts.longest_input_tokens = tokenized->longest;
  // --dump-intermediates runs each text whole, in one call.
  if (flags.has("dump-intermediates")) eopts.workspace_tokens = std::max(eopts.workspace_tokens, tokenized->longest);
  if (Status st = apply_engine_environment(eopts); !st.ok()) return flags.fail(st);
  if (Status st = apply_tensor_parallel_flags(flags, eopts); !st.ok()) return flags.fail(st);
  auto engine = create_engine(eopts);
  if (!engine.ok()) return flags.fail(engine.status());
  if (auto dump = flags.get("dump-intermediates")) {
    Status st = dump_intermediates(**engine, dumped_texts, tokenized->ids, *model_path, config->num_hidden_layers, *dump);
    if (!st.ok()) return flags.fail(st);
  }

  auto writer = EmbeddingWriter::open(*output, *out_format, n_texts, static_cast<size_t>(*dims));
  if (!writer.ok()) return flags.fail(writer.status());
  const auto start = std::chrono::steady_clock::now();
  Status st = embed_all(**engine, *tokenized, static_cast<size_t>(*max_num_batched_tokens), static_cast<size_t>(*dims),
                        **writer);
  if (st.ok()) st = (*writer)->finish();
  if (!st.ok()) return flags.fail(st);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "embedserve embed: %zu %s, %zu tokens in %.2f s (%.0f tokens/s) on %s -> %s\n",
               n_texts, n_texts == 1 ? "text" : "texts", n_tokens, secs, secs > 0 ? n_tokens / secs : 0.0,
               device_name((*engine)->info().device), *output == "-" ? "standard output" : output->c_str());
  return 0;
}

}  // namespace

int run_embed(int argc, char** argv) {
  Flags flags = make_flags();
  if (auto done = flags.parse_or_exit(argc, argv)) return *done;
  return run(flags);
}

}  // namespace embedserve::cli
