// embed on batch input: load the model, then the server's EmbedService and batch endpoint over a local
// scheduler, chunks of the input in order, output and error lines written to .partial files renamed at the end.
#include "cli/embed_batch.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/engine_flags.h"
#include "cli/partial_files.h"
#include "engine/engine_factory.h"
#include "jobs/batch_chunks.h"
#include "scheduler/scheduler.h"
#include "scheduler/worker_pool.h"
#include "server/batch_embeddings.h"
#include "server/embed_service.h"
#include "text/tokenizer_encoder.h"
#include "tokenizer/tokenizer.h"
#include "weights/model_config.h"
#include "weights/model_source.h"
#include "weights/sentence_transformers_config.h"

namespace embedserve::cli {

namespace fs = std::filesystem;

bool is_batch_input(const fs::path& input) {
  auto reader = jobs::LineReader::open(input, 0, 1u << 20);
  if (!reader.ok()) return false;
  std::string line;
  int64_t offset = 0;
  bool too_long = false;
  while (true) {
    auto got = reader->next(line, offset, too_long);
    if (!got.ok() || !*got || too_long) return false;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    return !j.is_discarded() && j.is_object() && j.contains("custom_id");
  }
}

namespace {

// A result file written whole or not at all: `<path>.partial`, renamed onto `path` by finish().
class PartialFile {
 public:
  explicit PartialFile(fs::path path) : path_(std::move(path)), partial_(path_.string() + ".partial") {}
  ~PartialFile() {
    if (file_) std::fclose(file_);
    if (!finished_) {
      std::error_code ec;
      fs::remove(partial_, ec);
    }
    if (registered_) forget_on_signal(partial_);
  }
  Status write(const std::string& bytes) {
    if (bytes.empty()) return Status();
    if (!file_) EMBEDSERVE_RETURN_IF_ERROR(create());
    if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size())
      return io_error("cannot write " + partial_.string() + " (disk full?)");
    bytes_ += bytes.size();
    return Status();
  }
  // Renames into place; a file that received nothing is not created (no errors: no error file).
  Status finish(bool create_when_empty) {
    if (!file_ && create_when_empty) EMBEDSERVE_RETURN_IF_ERROR(create());
    if (file_) {
      const bool ok = std::fflush(file_) == 0;
      std::fclose(file_);
      file_ = nullptr;
      if (!ok) return io_error("cannot write " + partial_.string() + " (disk full?)");
      std::error_code ec;
      fs::rename(partial_, path_, ec);
      if (ec) return io_error("cannot rename " + partial_.string() + " to " + path_.string() + ": " + ec.message());
    }
    finished_ = true;
    return Status();
  }
  uint64_t bytes() const { return bytes_; }

 private:
  Status create() {
    // Registered before it exists: a Ctrl-C or SIGTERM from here on removes it (no destructor runs then).
    unlink_on_signal(partial_);
    registered_ = true;
    if (!(file_ = std::fopen(partial_.c_str(), "wb"))) return io_error("cannot create " + partial_.string());
    return Status();
  }
  fs::path path_, partial_;
  std::FILE* file_ = nullptr;
  bool finished_ = false, registered_ = false;
  uint64_t bytes_ = 0;
};

fs::path default_error_path(const fs::path& output) {
  fs::path p = output;
  const std::string ext = p.extension().string();
  p.replace_extension();
  return p.string() + ".errors" + (ext.empty() ? ".jsonl" : ext);
}

}  // namespace

int run_embed_batch(const Flags& flags, const std::string& model_path, const fs::path& input, const fs::path& output,
                    EngineOptions eopts) {
  for (const char* text_only : {"dimensions", "prompt-name", "instruction", "max-length", "dump-intermediates"})
    if (flags.has(text_only))
      return flags.fail(invalid_argument(std::string("--") + text_only + " does not apply to batch input (" +
                                         input.string() + "): each request's body carries its own options"));
  if (output == "-") return flags.fail(invalid_argument("batch input needs a file --output (JSON Lines), not '-'"));
  if (output.extension() != ".jsonl" && output.extension() != ".ndjson")
    return flags.fail(invalid_argument("batch input writes OpenAI's output lines: name --output NAME.jsonl"));
  const fs::path error_path = flags.has("error-output") ? fs::path(*flags.get("error-output"))
                                                        : default_error_path(output);
  const Device on = resolve_device(eopts.device);  // the default budget depends on it
  auto budget = flags.get_int("max-num-batched-tokens", static_cast<long long>(default_max_num_batched_tokens(on)),
                              1, 1 << 24);
  if (!budget.ok()) return flags.fail(budget.status());
  auto threads = flags.get_int("threads", 0, 0, 4096);
  if (!threads.ok()) return flags.fail(threads.status());

  ModelSourceOptions source;
  source.environment = read_hub_environment();
  source.revision = flags.get_or("revision", "main");
  auto model_dir = resolve_model_path(model_path, source);
  if (!model_dir.ok()) return flags.fail(model_dir.status());
  auto config = load_model_config(*model_dir / "config.json");
  if (!config.ok()) return flags.fail(config.status());
  auto st_config = load_sentence_transformers_config(*model_dir);
  if (!st_config.ok()) return flags.fail(st_config.status());
  auto tokenizer = Tokenizer::load(*model_dir);
  if (!tokenizer.ok()) return flags.fail(tokenizer.status());
  const TokenizerEncoder encoder(std::move(*tokenizer));
  const size_t context = static_cast<size_t>(config->max_position_embeddings);

  eopts.model_dir = *model_dir;
  eopts.model_id = model_path;
  eopts.device = on;
  eopts.threads = static_cast<int>(*threads);
  SchedulerOptions so;
  so.max_num_batched_tokens = static_cast<size_t>(*budget);
  // A batch or a chunk (any request may hold a context-long input: it goes in chunks of the budget, or whole
  // where the model takes no chunks).
  eopts.workspace_tokens = workspace_tokens_for(so, context);
  eopts.longest_input_tokens = context;
  if (Status st = apply_engine_environment(eopts); !st.ok()) return flags.fail(st);
  if (Status st = apply_tensor_parallel_flags(flags, eopts); !st.ok()) return flags.fail(st);
  auto engine = create_engine(eopts);
  if (!engine.ok()) return flags.fail(engine.status());

  Scheduler scheduler(**engine, so);
  WorkerPool pool(2, 1024);
  EmbedServiceConfig cfg;
  cfg.served_names = {model_path};
  cfg.max_input_tokens = context;
  cfg.prompts = {st_config->prompts, st_config->default_prompt_name};
  const EmbedService service(encoder, scheduler, pool, (*engine)->info(), cfg, nullptr);
  EmbeddingsBatchEndpoint endpoint(service);

  PartialFile out(output), errors(error_path);
  int64_t completed = 0, failed = 0;
  const auto start = std::chrono::steady_clock::now();
  Status st;
  {
    auto chunks = jobs::BatchChunks::open(input, 0, endpoint, jobs::ChunkOptions{});
    if (!chunks.ok()) return flags.fail(chunks.status());
    for (;;) {
      auto chunk = chunks->next();
      if (!chunk.ok()) {
        st = chunk.status();
        break;
      }
      if (!*chunk) break;
      completed += (*chunk)->completed;
      failed += (*chunk)->failed;
      st = out.write((*chunk)->output);
      if (st.ok()) st = errors.write((*chunk)->errors);
      if (!st.ok()) break;
    }
  }
  scheduler.shutdown();
  if (st.ok()) st = out.finish(true);
  if (st.ok()) st = errors.finish(false);
  if (!st.ok()) return flags.fail(st);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "embedserve embed: %lld requests completed, %lld failed in %.2f s -> %s%s\n",
               static_cast<long long>(completed), static_cast<long long>(failed), secs, output.c_str(),
               failed ? (", errors in " + error_path.string()).c_str() : "");
  return failed ? 3 : 0;
}

}  // namespace embedserve::cli
