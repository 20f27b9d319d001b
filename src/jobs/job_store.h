// JobStore: the metadata of uploaded files and batch jobs, and each job's committed progress, in SQLite under
// --data-dir. Every call opens its own short-lived connection, so HTTP workers and the batch runner share the
// database through SQLite's own locking (WAL: readers never wait for a writer) and no lock of ours.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace embedserve::jobs {

struct FileRecord {
  std::string id;            // "file-<32 hex>", what clients see
  std::string owner;         // fingerprint of the API key that created it ("" without keys)
  std::string storage_name;  // the file's name under <data-dir>/files: random, unrelated to the id
  std::string filename;      // as uploaded (or "batch_<id>_output.jsonl")
  std::string purpose;       // "batch", "batch_output"
  int64_t bytes = 0;
  int64_t created_at = 0;    // Unix seconds
  std::optional<int64_t> expires_at;
};

// OpenAI's batch statuses.
inline constexpr const char* kValidating = "validating";
inline constexpr const char* kInProgress = "in_progress";
inline constexpr const char* kFinalizing = "finalizing";
inline constexpr const char* kCompleted = "completed";
inline constexpr const char* kFailed = "failed";
inline constexpr const char* kExpired = "expired";
inline constexpr const char* kCancelling = "cancelling";
inline constexpr const char* kCancelled = "cancelled";

struct BatchRecord {
  std::string id;  // "batch-<32 hex>"
  std::string owner;
  std::string endpoint;
  std::string input_file_id;
  std::string completion_window;
  std::string status;
  std::string output_file_id, error_file_id;  // "" until the job ends
  std::string errors_json;                    // OpenAI's `errors` list object, "" for null
  std::string metadata_json;                  // "" for null
  int64_t created_at = 0, expires_at = 0;
  std::optional<int64_t> in_progress_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at,
      cancelled_at;
  int64_t total = 0, completed = 0, failed = 0;  // request_counts
  // Committed progress: input bytes consumed, and the sizes of the output and error files holding exactly the
  // lines of that input. On resume the files are cut back to these sizes and the input read from this offset.
  int64_t input_offset = 0, output_bytes = 0, error_bytes = 0;
  std::string output_storage, error_storage;  // working files under <data-dir>/files, random names
};

class JobStore {
 public:
  // Opens (creating) <dir>/jobs.sqlite3 and its schema.
  static StatusOr<JobStore> open(const std::filesystem::path& dir);

  Status insert_file(const FileRecord& f);
  // nullopt when no file has that id for that owner: another key's file is reported as missing, not forbidden.
  StatusOr<std::optional<FileRecord>> get_file(const std::string& id, const std::string& owner) const;
  // Newest first; `after` (an id) continues a previous page.
  StatusOr<std::vector<FileRecord>> list_files(const std::string& owner, const std::string& purpose, size_t limit,
                                               const std::string& after) const;
  // True when a row was deleted.
  StatusOr<bool> delete_file(const std::string& id, const std::string& owner);
  StatusOr<std::vector<FileRecord>> files_expired_by(int64_t now) const;
  // Every storage name the database refers to (files and running jobs' working files): the rest is debris.
  StatusOr<std::vector<std::string>> storage_names() const;

  Status insert_batch(const BatchRecord& b);
  StatusOr<std::optional<BatchRecord>> get_batch(const std::string& id, const std::string& owner) const;
  // Newest first, after the batch `after`, at most `limit`.
  StatusOr<std::vector<BatchRecord>> list_batches(const std::string& owner, const std::string& after,
                                                  size_t limit) const;
  // Jobs the runner still has to work on, oldest first (validating, in_progress, finalizing, cancelling).
  StatusOr<std::vector<BatchRecord>> unfinished_batches() const;
  // Writes every mutable column of `b` (status, timestamps, counts, progress, result files) in one statement.
  Status update_batch(const BatchRecord& b);
  // Writes `b` and inserts the result files in one transaction: a job never points at a file that is not there.
  Status finish_batch(const BatchRecord& b, const std::vector<FileRecord>& results);
  // Sets a running job to cancelling; returns the record after the change, nullopt when there is no such job.
  StatusOr<std::optional<BatchRecord>> request_cancel(const std::string& id, const std::string& owner, int64_t now);
  // The current status of a job (the runner's check for a cancel between chunks).
  StatusOr<std::string> batch_status(const std::string& id) const;

 private:
  explicit JobStore(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace embedserve::jobs
