// BatchRunner: the job state machine, chunked processing with commits, resume, cancel, expiry, failure.
#include "jobs/batch_runner.h"

#include <optional>

#include <nlohmann/json.hpp>

#include "jobs/ids.h"

namespace embedserve::jobs {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

BatchRunner::BatchRunner(JobStore& store, FileStorage& storage, BatchEndpoint& endpoint, RunnerOptions options)
    : store_(store), storage_(storage), endpoint_(endpoint), options_(std::move(options)) {}

BatchRunner::~BatchRunner() { stop(); }

Status BatchRunner::start() {
  auto names = store_.storage_names();
  if (!names.ok()) return names.status();
  if (size_t n = storage_.remove_unreferenced(*names))
    log("removed " + std::to_string(n) + " file(s) under " + storage_.dir().string() +
        "/files that no record refers to (left by an interrupted upload or job)");
  thread_ = std::thread([this] { loop(); });
  return Status();
}

void BatchRunner::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void BatchRunner::loop() {
  // None until the first sweep, which runs at once (a default time point is the clock's epoch, the machine's
  // boot: within idle_poll of boot it would have put the first sweep off).
  std::optional<std::chrono::steady_clock::time_point> last_sweep;
  while (!stopping_.load()) {
    if (!last_sweep || std::chrono::steady_clock::now() - *last_sweep >= options_.idle_poll) {
      sweep_expired_files();
      last_sweep = std::chrono::steady_clock::now();
    }
    auto jobs = store_.unfinished_batches();
    if (!jobs.ok()) {
      log("cannot read the job database: " + jobs.status().message() + "; retrying");
      (void)wake_.try_acquire_for(options_.idle_poll);
      continue;
    }
    if (jobs->empty()) {
      (void)wake_.try_acquire_for(options_.idle_poll);
      continue;
    }
    run(std::move(jobs->front()));
  }
}

void BatchRunner::sweep_expired_files() {
  auto expired = store_.files_expired_by(unix_now());
  if (!expired.ok()) return;
  for (const auto& f : *expired) {
    auto deleted = store_.delete_file(f.id, f.owner);
    if (deleted.ok() && *deleted) storage_.remove(f.storage_name);
  }
}

void BatchRunner::run(BatchRecord b) {
  const std::string before = b.status;
  if (b.status == kValidating) {
    if (Status st = validate(b); !st.ok()) return fail(b, st, "validation_error");
    if (b.status == kFailed) return;
    auto status = store_.batch_status(b.id);  // a cancel may have come while the file was read
    if (!status.ok()) return fail(b, status.status(), "io_error");
    b.status = *status;
  }
  if (b.status == kCancelling) {
    if (Status st = finish(b, kCancelled); !st.ok()) fail(b, st, "io_error");
    return;
  }
  if (b.status == kInProgress) {
    if (before == kInProgress) log("resuming batch " + b.id + " at input byte " + std::to_string(b.input_offset) +
                                   " (" + std::to_string(b.completed + b.failed) + " of " +
                                   std::to_string(b.total) + " requests done)");
    if (Status st = process(b); !st.ok())
      return fail(b, st, st.code() == ErrorCode::kResourceExhausted ? "storage_full" : "io_error");
  }
  if (b.status == kFinalizing)
    if (Status st = finish(b, kCompleted); !st.ok()) fail(b, st, "io_error");
}

Status BatchRunner::validate(BatchRecord& b) {
  auto input = store_.get_file(b.input_file_id, b.owner);
  if (!input.ok()) return input.status();
  if (!*input) return not_found("the input file " + b.input_file_id + " was deleted before the job started");
  auto reader = LineReader::open(storage_.path_of((*input)->storage_name), 0, options_.chunks.max_line_bytes);
  if (!reader.ok()) return reader.status();
  std::string line;
  int64_t offset = 0, count = 0, line_number = 0;
  bool too_long = false;
  for (;;) {
    auto got = reader->next(line, offset, too_long);
    if (!got.ok()) return got.status();
    if (!*got) break;
    ++line_number;
    if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) continue;
    // The first request line tells whether this is JSONL at all; later bad lines fail alone.
    if (count == 0 && (too_long || !is_json_object(line))) {
      nlohmann::json errors = {{"object", "list"},
                               {"data", {{{"code", "invalid_json_line"},
                                          {"message", "line " + std::to_string(line_number) +
                                                          " is not a JSON object: the input file must be JSON Lines, "
                                                          "one {\"custom_id\", \"method\", \"url\", \"body\"} per line"},
                                          {"param", nullptr},
                                          {"line", line_number}}}}};
      b.errors_json = errors.dump();
      b.status = kFailed;
      b.failed_at = unix_now();
      return store_.update_batch(b);
    }
    ++count;
  }
  if (count == 0) {
    nlohmann::json errors = {{"object", "list"},
                             {"data", {{{"code", "empty_file"},
                                        {"message", "the input file holds no request lines"},
                                        {"param", nullptr},
                                        {"line", nullptr}}}}};
    b.errors_json = errors.dump();
    b.status = kFailed;
    b.failed_at = unix_now();
    return store_.update_batch(b);
  }
  b.total = count;
  b.status = kInProgress;
  b.in_progress_at = unix_now();
  log("batch " + b.id + ": " + std::to_string(count) + " requests");
  return store_.update_batch(b);
}

Status BatchRunner::process(BatchRecord& b) {
  auto input = store_.get_file(b.input_file_id, b.owner);
  if (!input.ok()) return input.status();
  if (!*input) return not_found("the input file " + b.input_file_id + " was deleted while the job ran");
  // Cut both result files back to the committed sizes: bytes past them belong to a chunk never committed.
  auto out = AppendFile::open(storage_.path_of(b.output_storage), static_cast<uint64_t>(b.output_bytes));
  if (!out.ok()) return out.status();
  auto err = AppendFile::open(storage_.path_of(b.error_storage), static_cast<uint64_t>(b.error_bytes));
  if (!err.ok()) return err.status();
  ChunkOptions chunk_options = options_.chunks;
  chunk_options.request_id_prefix = "batch_req_" + b.id.substr(b.id.size() - 32);  // the id's random part
  auto chunks = BatchChunks::open(storage_.path_of((*input)->storage_name), b.input_offset, endpoint_, chunk_options);
  if (!chunks.ok()) return chunks.status();
  for (;;) {
    if (stopping_.load()) return Status();  // resumed from the last commit at the next start
    auto status = store_.batch_status(b.id);
    if (!status.ok()) return status.status();
    if (*status == kCancelling) {
      b.status = kCancelling;
      return finish(b, kCancelled);
    }
    if (unix_now() >= b.expires_at) return finish(b, kExpired);
    auto chunk = chunks->next();
    if (stopping_.load()) return Status();  // answered while stopping: maybe with shutdown errors, so not committed
    if (!chunk.ok()) return chunk.status();
    if (!*chunk) break;
    const ChunkResult& r = **chunk;
    EMBEDSERVE_RETURN_IF_ERROR(storage_.reserve(r.output.size() + r.errors.size()));
    Status st = out->append(r.output);
    if (st.ok()) st = err->append(r.errors);
    if (st.ok()) st = out->sync();
    if (st.ok()) st = err->sync();
    if (!st.ok()) return st;  // fail() removes the working files: nothing half-written survives
    b.input_offset = r.end_offset;
    b.output_bytes = static_cast<int64_t>(out->size());
    b.error_bytes = static_cast<int64_t>(err->size());
    b.completed += r.completed;
    b.failed += r.failed;
    EMBEDSERVE_RETURN_IF_ERROR(store_.update_batch(b));
  }
  b.status = kFinalizing;
  b.finalizing_at = unix_now();
  return store_.update_batch(b);
}

Status BatchRunner::finish(BatchRecord& b, const char* status) {
  const int64_t now = unix_now();
  std::vector<FileRecord> results;
  auto result_file = [&](const std::string& storage, int64_t bytes, const char* kind) -> StatusOr<std::string> {
    auto id = random_id("file-");
    if (!id.ok()) return id.status();
    results.push_back({*id, b.owner, storage, b.id + "_" + kind + ".jsonl", "batch_output", bytes, now,
                       std::nullopt});
    return *id;
  };
  // As OpenAI: an output file when some requests succeeded, an error file when some failed.
  if (b.completed > 0) {
    auto id = result_file(b.output_storage, b.output_bytes, "output");
    if (!id.ok()) return id.status();
    b.output_file_id = *id;
  }
  if (b.failed > 0) {
    auto id = result_file(b.error_storage, b.error_bytes, "error");
    if (!id.ok()) return id.status();
    b.error_file_id = *id;
  }
  b.status = status;
  if (b.status == kCompleted) b.completed_at = now;
  else if (b.status == kCancelled) b.cancelled_at = now;
  else if (b.status == kExpired) b.expired_at = now;
  // The result files the record will not name go before the record says the job is over, so whoever sees its
  // final status sees no such file (removed after, a client or test polling the status raced with the removal).
  // Should the commit not happen, fail() removes both anyway, and a resumed run recreates an empty one (O_CREAT).
  if (b.completed == 0) storage_.remove(b.output_storage);
  if (b.failed == 0) storage_.remove(b.error_storage);
  EMBEDSERVE_RETURN_IF_ERROR(store_.finish_batch(b, results));
  log("batch " + b.id + " " + status + ": " + std::to_string(b.completed) + " completed, " +
      std::to_string(b.failed) + " failed");
  return Status();
}

void BatchRunner::fail(BatchRecord& b, const Status& why, const char* code) {
  nlohmann::json errors = {{"object", "list"},
                           {"data", {{{"code", code}, {"message", why.message()}, {"param", nullptr},
                                      {"line", nullptr}}}}};
  b.errors_json = errors.dump();
  b.status = kFailed;
  b.failed_at = unix_now();
  // A failed job keeps no partial results: the space goes back (it may be what ran out).
  storage_.remove(b.output_storage);
  storage_.remove(b.error_storage);
  if (Status st = store_.update_batch(b); !st.ok())
    log("batch " + b.id + " failed (" + why.message() + ") and the failure could not be recorded: " + st.message());
  else
    log("batch " + b.id + " failed: " + why.message());
}

}  // namespace embedserve::jobs
