// Router: the route table, and the checks every request passes before its handler.
#include "server/router.h"

#include <cstdio>
#include <exception>

#include "server/auth.h"
#include "server/cors.h"
#include "server/replica_report.h"

namespace embedserve {
namespace {

enum class Work { kInline, kPool };  // kPool: parses or tokenises, so it stays off the network threads

struct Route {
  const char* path;  // a "{id}" segment matches any one segment (ServerRequest::path_id)
  const char* method;
  bool needs_model;
  bool needs_auth;  // /health and /metrics stay open for load balancers and scrapers
  ErrorShape shape;
  Work work;
};

constexpr Route kRoutes[] = {
    {"/v1/embeddings", "POST", true, true, ErrorShape::kOpenAi, Work::kPool},
    {"/embed", "POST", true, true, ErrorShape::kTei, Work::kPool},
    {"/tokenize", "POST", true, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/models", "GET", false, true, ErrorShape::kOpenAi, Work::kInline},
    {"/info", "GET", true, true, ErrorShape::kTei, Work::kInline},
    {"/v1/files", "POST", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/files", "GET", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/files/{id}", "GET", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/files/{id}", "DELETE", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/files/{id}/content", "GET", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/batches", "POST", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/batches", "GET", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/batches/{id}", "GET", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/v1/batches/{id}/cancel", "POST", false, true, ErrorShape::kOpenAi, Work::kPool},
    {"/health", "GET", false, false, ErrorShape::kOpenAi, Work::kInline},
    {"/metrics", "GET", false, false, ErrorShape::kOpenAi, Work::kInline},
};

// Whether `path` matches the route pattern; a "{id}" segment takes one non-empty segment into `id`.
bool path_matches(std::string_view pattern, std::string_view path, std::string& id) {
  const size_t brace = pattern.find("{id}");
  if (brace == std::string_view::npos) return pattern == path;
  const std::string_view before = pattern.substr(0, brace), after = pattern.substr(brace + 4);
  if (path.size() <= before.size() + after.size() || path.substr(0, before.size()) != before ||
      path.substr(path.size() - after.size()) != after)
    return false;
  const std::string_view segment = path.substr(before.size(), path.size() - before.size() - after.size());
  if (segment.find('/') != std::string_view::npos) return false;
  id = std::string(segment);
  return true;
}

bool is_jobs_route(std::string_view pattern) {
  return pattern.rfind("/v1/files", 0) == 0 || pattern.rfind("/v1/batches", 0) == 0;
}

ServerResponse jobs_disabled(ErrorShape shape) {
  return error_response({404, "invalid_request_error", "not_found",
                         "the Files and Batches API is off: start the server with --data-dir DIR to enable it", "", 0},
                        shape);
}

ServerResponse json_response(std::string body) {
  ServerResponse r;
  r.body = std::move(body);
  return r;
}

ServerResponse handle_jobs_route(const JobsContext& jobs, std::string_view route, const ServerRequest& req) {
  if (route == "/v1/files") return req.method == "POST" ? handle_file_upload(jobs, req) : handle_file_list(jobs, req);
  if (route == "/v1/files/{id}") return req.method == "GET" ? handle_file_get(jobs, req) : handle_file_delete(jobs, req);
  if (route == "/v1/files/{id}/content") return handle_file_content(jobs, req);
  if (route == "/v1/batches") return req.method == "POST" ? handle_batch_create(jobs, req) : handle_batch_list(jobs, req);
  if (route == "/v1/batches/{id}") return handle_batch_get(jobs, req);
  return handle_batch_cancel(jobs, req);
}

}  // namespace

Router::Router(ServerConfig config, Metrics& metrics, WorkerPool& pool, WorkerPool* large_pool)
    : config_(std::move(config)), metrics_(metrics), pool_(pool), large_pool_(large_pool) {
  for (const auto& key : config_.api_keys) key_owners_.push_back(key_owner(key));
}

std::optional<ServerResponse> Router::precheck_upload(const ServerRequest& head,
                                                      std::optional<uint64_t> content_length) const {
  auto answer = [&](ServerResponse r) {
    // The same CORS headers handle() would add, so a browser can read why its upload was refused.
    if (!config_.cors_allow_origins.empty() && !head.origin.empty())
      add_cors_headers(config_.cors_allow_origins, head.origin, r);
    r.route = "/v1/files";
    metrics_.count_request(r.route, r.status);
    return std::optional<ServerResponse>(std::move(r));
  };
  if (!config_.api_keys.empty() && matching_key(head.authorization, config_.api_keys) < 0)
    return answer(error_response({401, "invalid_request_error", "invalid_api_key",
                                  "missing or wrong API key: send 'Authorization: Bearer <key>' with an --api-key value",
                                  "", 0}, ErrorShape::kOpenAi));
  const JobsContext* jobs = jobs_.load(std::memory_order_acquire);
  if (!jobs) return answer(jobs_disabled(ErrorShape::kOpenAi));
  if (content_length)
    if (Status st = jobs->storage.reserve(*content_length); !st.ok())
      return answer(error_response({507, "server_error", "storage_full", st.message(), "", 0}, ErrorShape::kOpenAi));
  if (draining_.load(std::memory_order_acquire))
    return answer(error_response(api_error_from_status(unavailable("the server is shutting down")), ErrorShape::kOpenAi));
  return std::nullopt;
}

Respond Router::wrap(std::string route, Respond respond) {
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  auto answered = std::make_shared<std::atomic<bool>>(false);
  return [this, answered, route = std::move(route), respond = std::move(respond)](ServerResponse r) {
    if (answered->exchange(true)) return;  // exactly once, even if a handler's error path runs after it answered
    r.route = route;
    metrics_.count_request(route, r.status);
    // Before respond(): once the answer is handed over, the caller may tear the router down.
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    respond(std::move(r));
  };
}

void Router::reject(int status, std::string message, Respond respond) {
  Respond done = wrap("other", std::move(respond));
  ApiError e = bad_request(std::move(message), "", status == 413 ? "request_too_large" : "invalid_request");
  e.status = status;
  if (status == 408) e.code = "request_timeout";
  if (status == 503) {  // the HTTP layer is full (connections, body bytes): a transient state worth a retry
    e.type = "server_error";
    e.code = "unavailable";
    e.retry_after_s = 1;
  }
  done(error_response(e, ErrorShape::kOpenAi));
}

void Router::handle(ServerRequest req, CancelFlag cancel, Respond respond) {
  // An upload streamed to disk is removed on every path that does not hand it to its handler.
  struct UploadGuard {
    std::string path;
    ~UploadGuard() {
      if (!path.empty()) std::remove(path.c_str());
    }
  } upload{req.body_file};
  const Route* route = nullptr;
  std::string allowed;
  const char* pattern = nullptr;  // the route label: patterns keep the metrics' label set bounded
  for (const auto& r : kRoutes) {
    std::string id;
    if (!path_matches(r.path, req.path, id)) continue;
    pattern = r.path;
    allowed += (allowed.empty() ? "" : ", ") + std::string(r.method);
    if (req.method == r.method) {
      route = &r;
      req.path_id = std::move(id);
    }
  }
  const bool known_path = !allowed.empty();
  const auto& cors = config_.cors_allow_origins;
  if (!cors.empty() && !req.origin.empty())
    respond = [respond = std::move(respond), &cors, origin = req.origin](ServerResponse r) {
      add_cors_headers(cors, origin, r);
      respond(std::move(r));
    };
  Respond done = wrap(known_path ? pattern : "other", std::move(respond));
  const ErrorShape shape = route ? route->shape : ErrorShape::kOpenAi;
  // Before authentication: browsers send a preflight without credentials.
  if (!cors.empty() && known_path && is_cors_preflight(req))
    return done(cors_preflight_response(cors, req, allowed));
  if (!known_path)
    return done(error_response({404, "invalid_request_error", "not_found", "no route " + req.method + " " + req.path +
                                    "; see /v1/embeddings, /v1/files, /v1/batches, /embed, /tokenize, /v1/models, /info, /health, /metrics", "", 0},
                               shape));
  if (!route) {
    ServerResponse r = error_response({405, "invalid_request_error", "method_not_allowed",
                                     req.method + " is not allowed on " + req.path + "; use " + allowed, "", 0}, shape);
    r.headers.emplace_back("Allow", allowed);
    return done(std::move(r));
  }
  if (route->needs_auth && !config_.api_keys.empty()) {
    const int key = matching_key(req.authorization, config_.api_keys);
    if (key < 0)
      return done(error_response({401, "invalid_request_error", "invalid_api_key",
                                  "missing or wrong API key: send 'Authorization: Bearer <key>' with an --api-key value",
                                  "", 0},
                                 shape));
    req.owner = key_owners_[static_cast<size_t>(key)];
  }
  if (draining_.load(std::memory_order_acquire))
    return done(error_response(api_error_from_status(unavailable("the server is shutting down")), shape));

  const std::string_view path = route->path;
  if (is_jobs_route(path)) {
    const JobsContext* jobs = jobs_.load(std::memory_order_acquire);
    if (!jobs) return done(jobs_disabled(shape));
    upload.path.clear();  // the handler owns it now (or the task's destruction, if the pool refuses it)
    auto task_upload = std::make_shared<UploadGuard>();
    task_upload->path = req.body_file;
    auto task = [jobs, path, req = std::move(req), done, task_upload]() mutable {
      try {
        done(handle_jobs_route(*jobs, path, req));
      } catch (const std::exception& e) {
        done(error_response(api_error_from_status(internal_error(std::string("unexpected error: ") + e.what())),
                            ErrorShape::kOpenAi));
      }
    };
    if (!pool_.try_post(std::move(task)))
      done(error_response(api_error_from_status(resource_exhausted("the server is busy; retry shortly")), shape));
    return;
  }
  if (path == "/metrics") {
    const EmbedService* s = service_.load(std::memory_order_acquire);
    ServerResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = s ? metrics_.render(s->queue_stats(), in_flight(), s->replicas(), s->config().replica_devices)
               : metrics_.render(SchedulerStats{}, in_flight());
    return done(std::move(r));
  }
  if (path == "/v1/models") return done(models_response(config_));
  const EmbedService* service = service_.load(std::memory_order_acquire);
  if (path == "/health") {
    if (!service) {
      ServerResponse r = json_response("{\"status\":\"loading\"}");
      r.status = 503;
      r.headers.emplace_back("Retry-After", "5");
      return done(std::move(r));
    }
    return done(health_response(service->replicas()));
  }
  if (route->needs_model && !service)
    return done(error_response(api_error_from_status(unavailable("the model is still loading; retry shortly")), shape));
  if (path == "/info") return done(tei_info_response(*service, config_));

  WorkerPool& workers = large_pool_ && req.body.size() >= kLargeBodyBytes ? *large_pool_ : pool_;
  auto task = [service, path, req = std::move(req), cancel = std::move(cancel), done]() mutable {
    // Handlers return errors as values; this catch is the last line so that even a bug (or bad_alloc on a
    // huge request) becomes one 500 for one client instead of a dead server.
    try {
      if (path == "/v1/embeddings") handle_openai_embeddings(*service, req, std::move(cancel), done);
      else if (path == "/embed") handle_tei_embed(*service, req, std::move(cancel), done);
      else handle_tokenize(*service, req, done);
    } catch (const std::exception& e) {
      done(error_response(api_error_from_status(internal_error(std::string("unexpected error: ") + e.what())),
                          ErrorShape::kOpenAi));
    }
  };
  if (!workers.try_post(std::move(task)))
    done(error_response(api_error_from_status(resource_exhausted("the server is busy; retry shortly")), shape));
}

}  // namespace embedserve
