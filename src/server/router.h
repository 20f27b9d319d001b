// Router: path and method → handler, with authentication, readiness, load shedding, metrics and the
// error shape each route speaks. Handlers that parse, tokenise or serialise run on the worker pool.
#pragma once

#include <atomic>
#include <optional>
#include <vector>
#include <string>

#include "scheduler/job.h"
#include "scheduler/worker_pool.h"
#include "server/embed_service.h"
#include "server/handlers.h"
#include "server/http_types.h"
#include "server/jobs_handlers.h"
#include "server/metrics.h"

namespace embedserve {

class Router {
 public:
  // Bodies of at least this many bytes are parsed and tokenised on `large_pool` when one is given, so that small
  // requests never queue behind them: a 20 MB text takes ~0.6 s of a tokenizer thread before it is refused. The
  // Files and Batches routes run there too: they wait on the disk (uploads, SQLite, whose connection closing may
  // checkpoint and sync its log), and a batch job's polls on the interactive pool put 16-token queries beside a
  // job at p99 8.9 ms against 3.3 ms idle on the H200.
  static constexpr size_t kLargeBodyBytes = 1 << 20;

  Router(ServerConfig config, Metrics& metrics, WorkerPool& pool, WorkerPool* large_pool = nullptr);

  // Publishes the loaded model. Before this, /health and the model routes answer 503.
  void set_ready(const EmbedService* service) { service_.store(service, std::memory_order_release); }
  bool ready() const { return service_.load(std::memory_order_acquire) != nullptr; }
  // Enables the Files and Batches API (--data-dir); without it those routes answer 404 saying so. Call before
  // the server starts; `jobs` must outlive the router.
  void set_jobs(const JobsContext* jobs) { jobs_.store(jobs, std::memory_order_release); }
  // For a body the HTTP layer would stream to disk (POST /v1/files): the answer to give before reading it —
  // 401 without the key, 404 without --data-dir, 503 while draining, 507 when a `content_length` body would
  // not fit under --max-storage-bytes — or nullopt to go on.
  std::optional<ServerResponse> precheck_upload(const ServerRequest& head,
                                                std::optional<uint64_t> content_length) const;
  // After this, new requests get 503 (the server is draining for shutdown).
  void set_draining() { draining_.store(true, std::memory_order_release); }

  // Answers `req` exactly once through `respond`, possibly from another thread. Never throws.
  void handle(ServerRequest req, CancelFlag cancel, Respond respond);
  // An error found by the HTTP layer before routing (413 body too large, 431, malformed HTTP; 503 with
  // Retry-After when the connection or body budget is full).
  void reject(int status, std::string message, Respond respond);

  // Requests handed to handle()/reject() whose answer has not been handed back yet (a gauge for /metrics;
  // HttpServer counts its own unwritten answers for shutdown).
  size_t in_flight() const { return in_flight_.load(std::memory_order_acquire); }
  Metrics& metrics() { return metrics_; }

 private:
  Respond wrap(std::string route, Respond respond);

  const ServerConfig config_;
  Metrics& metrics_;
  WorkerPool& pool_;
  WorkerPool* large_pool_;  // bodies of kLargeBodyBytes or more and the jobs routes, when set
  std::atomic<const EmbedService*> service_{nullptr};
  std::atomic<const JobsContext*> jobs_{nullptr};
  std::vector<std::string> key_owners_;  // key_owner() of each --api-key, in order
  std::atomic<bool> draining_{false};
  std::atomic<size_t> in_flight_{0};
};

}  // namespace embedserve
