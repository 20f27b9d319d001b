// Router: the route table, and the checks every request passes before its handler.
#include "server/router.h"

#include <exception>

#include "server/auth.h"
#include "server/cors.h"

namespace embedserve {
namespace {

enum class Work { kInline, kPool };  // kPool: parses or tokenises, so it stays off the network threads

struct Route {
  const char* path;
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
    {"/health", "GET", false, false, ErrorShape::kOpenAi, Work::kInline},
    {"/metrics", "GET", false, false, ErrorShape::kOpenAi, Work::kInline},
};

ServerResponse json_response(std::string body) {
  ServerResponse r;
  r.body = std::move(body);
  return r;
}

}  // namespace

Router::Router(ServerConfig config, Metrics& metrics, WorkerPool& pool)
    : config_(std::move(config)), metrics_(metrics), pool_(pool) {}

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
  const Route* route = nullptr;
  std::string allowed;
  for (const auto& r : kRoutes) {
    if (req.path != r.path) continue;
    allowed += (allowed.empty() ? "" : ", ") + std::string(r.method);
    if (req.method == r.method) route = &r;
  }
  const bool known_path = !allowed.empty();
  const auto& cors = config_.cors_allow_origins;
  if (!cors.empty() && !req.origin.empty())
    respond = [respond = std::move(respond), &cors, origin = req.origin](ServerResponse r) {
      add_cors_headers(cors, origin, r);
      respond(std::move(r));
    };
  Respond done = wrap(known_path ? req.path : "other", std::move(respond));
  const ErrorShape shape = route ? route->shape : ErrorShape::kOpenAi;
  // Before authentication: browsers send a preflight without credentials.
  if (!cors.empty() && known_path && is_cors_preflight(req))
    return done(cors_preflight_response(cors, req, allowed));
  if (!known_path)
    return done(error_response({404, "invalid_request_error", "not_found", "no route " + req.method + " " + req.path +
                                    "; see /v1/embeddings, /embed, /tokenize, /v1/models, /info, /health, /metrics", "", 0},
                               shape));
  if (!route) {
    ServerResponse r = error_response({405, "invalid_request_error", "method_not_allowed",
                                     req.method + " is not allowed on " + req.path + "; use " + allowed, "", 0}, shape);
    r.headers.emplace_back("Allow", allowed);
    return done(std::move(r));
  }
  if (route->needs_auth && !config_.api_key.empty() && !bearer_matches(req.authorization, config_.api_key))
    return done(error_response({401, "invalid_request_error", "invalid_api_key",
                                "missing or wrong API key: send 'Authorization: Bearer <key>' with the --api-key value", "", 0},
                               shape));
  if (draining_.load(std::memory_order_acquire))
    return done(error_response(api_error_from_status(unavailable("the server is shutting down")), shape));

  const std::string_view path = route->path;
  if (path == "/metrics") {
    const EmbedService* s = service_.load(std::memory_order_acquire);
    ServerResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = metrics_.render(s ? s->queue_stats() : SchedulerStats{}, in_flight());
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
    return done(json_response("{\"status\":\"healthy\"}"));
  }
  if (route->needs_model && !service)
    return done(error_response(api_error_from_status(unavailable("the model is still loading; retry shortly")), shape));
  if (path == "/info") return done(tei_info_response(*service, config_));

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
  if (!pool_.try_post(std::move(task)))
    done(error_response(api_error_from_status(resource_exhausted("the server is busy; retry shortly")), shape));
}

}  // namespace embedserve
