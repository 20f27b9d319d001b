// BatchRunner: one thread that takes batch jobs through validating → in_progress → finalizing → completed (or
// failed, expired, cancelling → cancelled), committing progress chunk by chunk so a restarted server resumes
// every unfinished job from its last commit; it also deletes files past their expiry.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <semaphore>
#include <string>
#include <thread>

#include "core/status.h"
#include "jobs/batch_chunks.h"
#include "jobs/batch_endpoint.h"
#include "jobs/file_storage.h"
#include "jobs/job_store.h"

namespace embedserve::jobs {

struct RunnerOptions {
  ChunkOptions chunks;
  std::chrono::milliseconds idle_poll{1000};            // how often an idle runner looks for expired files
  std::function<void(const std::string&)> log;          // one line per job event (start, resume, end); optional
};

class BatchRunner {
 public:
  // All three must outlive the runner.
  BatchRunner(JobStore& store, FileStorage& storage, BatchEndpoint& endpoint, RunnerOptions options);
  ~BatchRunner();  // stop()
  BatchRunner(const BatchRunner&) = delete;
  BatchRunner& operator=(const BatchRunner&) = delete;

  // Removes files a crash left unrecorded, then starts the thread, which first resumes unfinished jobs.
  Status start();
  // A job was created or cancelled: look now rather than at the next poll.
  void wake() { wake_.release(); }
  // Asks the runner to stop: nothing is committed after this (a chunk answered during shutdown may hold the
  // scheduler's "shutting down" errors, which must not become error lines); the job resumes from its last commit
  // at the next start. Does not wait.
  void request_stop() {
    stopping_.store(true);
    wake_.release();
  }
  // request_stop(), then joins the thread once its chunks in flight are answered. Idempotent.
  void stop();

 private:
  void loop();
  void sweep_expired_files();
  // Runs one job until it is finished, stopped or its state needs another look; errors fail the job.
  void run(BatchRecord b);
  Status validate(BatchRecord& b);
  Status process(BatchRecord& b);
  // Ends the job with `status` (completed, cancelled, expired): records its result files.
  Status finish(BatchRecord& b, const char* status);
  void fail(BatchRecord& b, const Status& why, const char* code);
  void log(const std::string& line) const {
    if (options_.log) options_.log(line);
  }

  JobStore& store_;
  FileStorage& storage_;
  BatchEndpoint& endpoint_;
  RunnerOptions options_;
  std::atomic<bool> stopping_{false};
  std::binary_semaphore wake_{0};
  std::thread thread_;
};

// Unix seconds now.
int64_t unix_now();

}  // namespace embedserve::jobs
